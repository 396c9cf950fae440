import { describe, expect, it } from "vitest";
import { Intent } from "./intent";
import { ApiError } from "./problems";

const keys = () => {
  let n = 0;
  return () => `key-${++n}`;
};

describe("Intent", () => {
  it("sends a double-click once", async () => {
    const intent = new Intent(keys());
    const sent: string[] = [];
    let finish: () => void = () => {};
    const first = intent.run((key) => {
      sent.push(key);
      return new Promise<void>((done) => (finish = done));
    });
    expect(intent.busy).toBe(true);
    expect(await intent.run(async (key) => sent.push(key))).toEqual({ ran: false });
    finish();
    expect(await first).toEqual({ ran: true, value: undefined });
    expect(sent).toEqual(["key-1"]);
    expect(intent.busy).toBe(false);
  });

  it("retries an unanswered attempt with its key, and starts a new intent after an answer", async () => {
    const intent = new Intent(keys());
    const sent: string[] = [];
    await expect(intent.run(async (key) => { sent.push(key); throw new TypeError("Failed to fetch"); })).rejects.toThrow();
    await intent.run(async (key) => sent.push(key));
    await intent.run(async (key) => sent.push(key));
    const problem = new ApiError({ type: "/problems/insufficient-funds", title: "", status: 409, detail: "" });
    await expect(intent.run(async (key) => { sent.push(key); throw problem; })).rejects.toBe(problem);
    await intent.run(async (key) => sent.push(key));
    expect(sent).toEqual(["key-1", "key-1", "key-2", "key-3", "key-4"]);
  });

  it("forgets the key when the values change, not while sending", async () => {
    const intent = new Intent(keys());
    const sent: string[] = [];
    await expect(intent.run(async (key) => { sent.push(key); throw new TypeError("offline"); })).rejects.toThrow();
    intent.forget();
    await intent.run(async (key) => sent.push(key));
    expect(sent).toEqual(["key-1", "key-2"]);
  });
});
