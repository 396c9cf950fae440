import { describe, expect, it } from "vitest";
import { latestOnly } from "./latest";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("latestOnly", () => {
  it("shows the latest load's answer even when an earlier one answers after it", async () => {
    const loads = latestOnly();
    const shown: string[] = [];
    const load = async (answer: Promise<string>) => {
      const isCurrent = loads.begin();
      const value = await answer;
      if (isCurrent()) shown.push(value);
    };
    const early = deferred<string>();
    const late = deferred<string>();
    const first = load(early.promise);
    const second = load(late.promise);
    late.resolve("2000-01-01 to 2000-12-31: none");
    await second;
    early.resolve("from 2000-01-01: everything");
    await first;
    expect(shown).toEqual(["2000-01-01 to 2000-12-31: none"]);
  });
});
