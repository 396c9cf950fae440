import { describe as group, expect, it } from "vitest";
import { describe, fieldErrors } from "./problems";

group("problems", () => {
  it("maps each field to its first message", () => {
    const problem = {
      type: "/problems/validation", title: "Unprocessable Entity", status: 422, detail: "invalid input",
      errors: [
        { field: "email", message: "is not a valid email address" },
        { field: "address.country", message: "is not an ISO 3166-1 alpha-2 country code" },
        { field: "email", message: "second" },
      ],
    };
    expect(fieldErrors(problem)).toEqual({
      email: "is not a valid email address",
      "address.country": "is not an ISO 3166-1 alpha-2 country code",
    });
    expect(fieldErrors(undefined)).toEqual({});
  });

  it("tells a refusal as a sentence, without its code", () => {
    expect(describe({ type: "/problems/insufficient-funds", title: "Conflict", status: 409, detail: "insufficient funds: the balance is 1.00 EUR" }))
      .toBe("Insufficient funds: the balance is 1.00 EUR.");
    expect(describe({ type: "/problems/validation", title: "Unprocessable Entity", status: 422, detail: "" })).toBe("Unprocessable Entity.");
    expect(describe({ type: "/problems/network", title: "Network error", status: 0, detail: "TypeError" }))
      .toBe("The server could not be reached. Check the connection and try again.");
  });
});
