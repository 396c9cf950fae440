import { useState, type FormEvent } from "react";
import { api, query, type AuditEntry, type EventView, type Page, type Verification } from "../api/client";
import { Empty, Field, Loading, Pager, ProblemBanner, toProblem, useLoad, usePager } from "../components";
import type { Problem } from "../lib/problems";

const TYPES = ["account", "client", "staff", "transfer"];

export function AuditPage() {
  const [stream, setStream] = useState<{ type: string; id: string } | null>(null);
  return (
    <section>
      <h1>Audit</h1>
      <StreamPicker onPick={setStream} />
      {stream ? <StreamView key={`${stream.type}/${stream.id}`} type={stream.type} id={stream.id} /> : <RecentEvents onPick={setStream} />}
    </section>
  );
}

function StreamPicker({ onPick }: { onPick: (stream: { type: string; id: string }) => void }) {
  const [type, setType] = useState("account");
  const [id, setId] = useState("");
  return (
    <form
      className="row"
      aria-label="Open a stream"
      onSubmit={(e) => {
        e.preventDefault();
        if (id.trim()) onPick({ type, id: id.trim() });
      }}
    >
      <Field label="Stream type" name="stream-type" value={type} onChange={setType} options={TYPES} />
      <Field label="Id" name="stream-id" value={id} onChange={setId} />
      <button type="submit">Open stream</button>
    </form>
  );
}

function RecentEvents({ onPick }: { onPick: (stream: { type: string; id: string }) => void }) {
  const pager = usePager();
  const log = useLoad(() => api.get<Page<AuditEntry>>(`/v1/audit/log${query({ cursor: pager.cursor, limit: 25 })}`), [pager.cursor]);
  return (
    <>
      <h2>Audit log</h2>
      <ProblemBanner problem={log.problem} />
      <Loading loading={log.loading}>
        <Empty when={!!log.data && log.data.items.length === 0}>No events yet.</Empty>
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Event</th>
              <th>Stream</th>
              <th>Actor</th>
              <th>Correlation</th>
            </tr>
          </thead>
          <tbody>
            {log.data?.items.map((entry) => (
              <tr key={`${entry.aggregate_type}/${entry.aggregate_id}/${entry.sequence}`}>
                <td>{entry.occurred_at.replace("T", " ").slice(0, 19)}</td>
                <td>{entry.event_type}</td>
                <td>
                  <button type="button" className="link" onClick={() => onPick({ type: entry.aggregate_type, id: entry.aggregate_id })}>
                    {entry.aggregate_type} {entry.aggregate_id.slice(0, 8)}… #{entry.sequence}
                  </button>
                </td>
                <td>
                  {entry.actor_role} {entry.actor_id.slice(0, 8)}
                </td>
                <td>{entry.correlation_id.slice(0, 8)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Pager pager={pager} nextCursor={log.data?.next_cursor} />
      </Loading>
    </>
  );
}

function StreamView({ type, id }: { type: string; id: string }) {
  const events = useLoad(() => api.get<Page<EventView>>(`/v1/audit/streams/${type}/${id}/events?limit=200`), [type, id]);
  const [version, setVersion] = useState("");
  const [asOf, setAsOf] = useState("");
  const [state, setState] = useState<unknown>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  async function showState(event: FormEvent) {
    event.preventDefault();
    try {
      const params = version ? { version } : asOf ? { as_of: new Date(asOf).toISOString() } : {};
      setState(await api.get(`/v1/audit/streams/${type}/${id}/state${query(params)}`));
      setProblem(null);
    } catch (error) {
      setProblem(toProblem(error));
    }
  }
  return (
    <>
      <h2>
        {type} {id}
      </h2>
      <ProblemBanner problem={events.problem ?? problem} />
      <Loading loading={events.loading}>
        <ol className="timeline" aria-label="Events">
          {events.data?.items.map((event) => {
            const meta = event.metadata as Record<string, string>;
            return (
              <li key={event.sequence}>
                <strong>
                  #{event.sequence} {event.event_type}
                </strong>{" "}
                <span className="muted">
                  {meta.occurred_at} · {meta.actor_role} {meta.actor_id} · correlation {meta.correlation_id}
                </span>
                <code className="hash" title="hash">
                  {meta.hash?.slice(0, 16)}
                </code>
              </li>
            );
          })}
        </ol>
      </Loading>
      <form className="row" onSubmit={showState} aria-label="State as of">
        <Field label="Version" name="version" value={version} onChange={setVersion} />
        <Field label="or as of" name="as_of" type="datetime-local" value={asOf} onChange={setAsOf} />
        <button type="submit">Show state</button>
      </form>
      {state !== null && (
        <pre className="state" aria-label="State">
          {JSON.stringify(state, null, 2)}
        </pre>
      )}
    </>
  );
}

export function VerifyPage() {
  const [result, setResult] = useState<Verification | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  async function verify() {
    setBusy(true);
    try {
      setResult(await api.get<Verification>("/v1/audit/verify"));
      setProblem(null);
    } catch (error) {
      setProblem(toProblem(error));
    } finally {
      setBusy(false);
    }
  }
  return (
    <section>
      <h1>Integrity</h1>
      <p>Recomputes every event's hash and checks each stream's chain.</p>
      <button type="button" onClick={verify} disabled={busy}>
        {busy ? "Verifying…" : "Verify all streams"}
      </button>
      <ProblemBanner problem={problem} />
      {result && (
        <div role="status" className={`banner ${result.ok ? "ok" : "error"}`}>
          {result.ok ? "Intact" : "Tampering found"}: {result.streams_checked} streams, {result.events_checked} events checked.
          {!result.ok && (
            <ul>
              {(result.failures as unknown as { aggregate_type: string; aggregate_id: string; sequence: number; problem: string }[]).map((f) => (
                <li key={`${f.aggregate_id}/${f.sequence}/${f.problem}`}>
                  {f.aggregate_type} {f.aggregate_id} event {f.sequence}: {f.problem.replace(/_/g, " ")}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
