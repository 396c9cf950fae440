import { describe, expect, it } from "vitest";
import { rangeWords } from "../components";

describe("rangeWords", () => {
  it("names the rows shown out of the total", () => {
    expect(rangeWords({ page: 1, size: 25 }, 25, 60, true, ["client", "clients"])).toBe("1–25 of 60 clients");
    expect(rangeWords({ page: 3, size: 25 }, 10, 60, true, ["client", "clients"])).toBe("51–60 of 60 clients");
  });
  it("says when the count stopped", () => {
    expect(rangeWords({ page: 1, size: 50 }, 50, 10000, false, ["entry", "entries"])).toBe("1–50 of more than 10,000 entries");
  });
  it("is short for a single page, and silent without a total", () => {
    expect(rangeWords({ page: 1, size: 25 }, 3, 3, true, ["client", "clients"])).toBe("3 clients");
    expect(rangeWords({ page: 1, size: 25 }, 0, 0, true, ["client", "clients"])).toBe("No clients");
    expect(rangeWords({ page: 1, size: 25 }, 1, 1, true, ["client", "clients"])).toBe("1 client");
    expect(rangeWords({ page: 1, size: 25 }, 3, undefined, undefined, ["client", "clients"])).toBe("");
  });
});
