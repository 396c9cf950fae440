// One intent, one Idempotency-Key. A click on Deposit with an amount is one intent: a
// second click while it runs must not send another (a double-click booked twice), and a
// retry after the network failed must send the same key, so the server books it once.
// A new key comes only when the last attempt was answered or the values were changed.

import { ApiError } from "./problems";

export type Outcome<T> = { ran: false } | { ran: true; value: T };

export class Intent {
  private key: string | null = null;
  private running = false;

  constructor(private readonly newKey: () => string = () => crypto.randomUUID()) {}

  get busy(): boolean {
    return this.running;
  }

  /** Sends once at a time; a call while an attempt runs does nothing (`ran: false`). */
  async run<T>(send: (key: string) => Promise<T>): Promise<Outcome<T>> {
    if (this.running) return { ran: false };
    this.running = true;
    this.key ??= this.newKey();
    try {
      const value = await send(this.key);
      this.key = null;
      return { ran: true, value };
    } catch (error) {
      // Answered (a problem): the intent is over. Not answered (the network): the same
      // key again next time, as the server may have booked it.
      if (error instanceof ApiError) this.key = null;
      throw error;
    } finally {
      this.running = false;
    }
  }

  /** The values changed: what is sent next is a new intent. */
  forget(): void {
    if (!this.running) this.key = null;
  }
}
