import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { Confirm, Field, ProblemBanner, toProblem, useCommand } from "../components";
import { fieldErrors, type Problem } from "../lib/problems";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An admin erases a client's personal data (right to be forgotten), by the client's id
 * as the request names it: admins do not read clients, so the screen shows none. The
 * client's agent deactivates the client first.
 */
export function ErasePage() {
  const [client, setClient] = useState("");
  const [reason, setReason] = useState("");
  const [asking, setAsking] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const erasure = useCommand();
  const errors: Record<string, string | undefined> = {
    ...fieldErrors(problem ?? undefined),
    ...(client && !UUID.test(client.trim()) ? { client: "A client id looks like 0192f3a1-7c2e-7b4d-9a10-5e6f7a8b9c0d." } : {}),
  };
  const ready = UUID.test(client.trim()) && reason.trim().length > 0;

  function ask(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    if (ready) setAsking(true);
  }

  async function erase() {
    const id = client.trim();
    try {
      const outcome = await erasure.run((key) => api.post<{ version: number }>(`/v1/clients/${id}/erase`, { reason: reason.trim() }, key));
      if (!outcome.ran) return;
      setAsking(false);
      setProblem(null);
      setDone(`Client ${id} is erased. The audit trail keeps who erased them, when and why.`);
      setClient("");
      setReason("");
      erasure.forget();
    } catch (error) {
      setAsking(false);
      setProblem(toProblem(error));
    }
  }

  return (
    <section>
      <h1>Erase a client</h1>
      <p className="muted">
        For a request under the right to be forgotten. The client's agent deactivates the client first. Erasing takes their names, date
        of birth, contact details and address out of every screen, search and export, and cannot be undone. Their accounts and
        transactions stay, without a name.
      </p>
      <ProblemBanner problem={problem} />
      {done && <p role="status" className="banner ok">{done}</p>}
      <form onSubmit={ask} aria-label="Erase a client">
        <Field label="Client id" name="client" value={client} onChange={setClient} error={errors.client} required />
        <Field
          label="Reason"
          name="reason"
          value={reason}
          onChange={setReason}
          error={errors.reason}
          hint="Recorded in the audit trail: the request and its reference, never the client's personal data."
          required
        />
        {asking ? (
          <Confirm label="Confirm erasure" confirm="Erase for good" busy={erasure.busy} onCancel={() => setAsking(false)} onConfirm={erase}>
            Erase the personal data of client {client.trim()}? This cannot be undone.
          </Confirm>
        ) : (
          <button type="submit" className="danger" disabled={!ready}>
            Erase…
          </button>
        )}
      </form>
    </section>
  );
}
