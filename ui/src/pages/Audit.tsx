import { useContext, useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { allPages, api, query, type AuditEntry, type EventView, type Page, type Verification, type VerificationRun } from "../api/client";
import { CopyButton, Empty, Field, Loading, Pager, ProblemBanner, saveFile, SessionContext, toProblem, useLoad, usePager } from "../components";
import { formatAccountNumber, formatWhen, idTail } from "../lib/format";
import { formatMoney, type Money } from "../lib/money";
import type { Problem } from "../lib/problems";
import { HeldDigestPanel, ProveButton, useHeld, type Held } from "./LedgerProof";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
const ACCOUNT_NUMBER = /^LL\d{14}$/;

/** Where an id of this aggregate type is shown to people, if anywhere. */
function pageOf(type: string, id: string): string | null {
  if (type === "account") return `/accounts/${id}`;
  if (type === "client") return `/clients/${id}`;
  return null;
}

/** An id in full, copyable, linked to its page when it has one. */
function Id({ id, type }: { id: string; type?: string }) {
  const page = type ? pageOf(type, id) : null;
  return (
    <span className="id">
      {page ? <Link to={page}>{id}</Link> : <code>{id}</code>} <CopyButton text={id} label={`Copy ${id}`} />
    </span>
  );
}

function isMoney(value: unknown): value is Money {
  return !!value && typeof value === "object" && "amount_minor" in value && "currency" in value;
}

/** `to_account_id` → `to account`. */
function words(key: string): string {
  return key.replace(/_id$/, "").replace(/_/g, " ");
}

/** One value of an event or a state, as people read it. */
function Value({ name, value }: { name: string; value: unknown }) {
  if (value === null || value === undefined || value === "") return <span className="muted">—</span>;
  if (isMoney(value)) return <>{formatMoney(value)}</>;
  if (typeof value === "string") {
    if (UUID.test(value)) {
      const type = /account/.test(name) ? "account" : /client/.test(name) ? "client" : undefined;
      return <Id id={value} type={type} />;
    }
    if (INSTANT.test(value)) return <>{formatWhen(value)}</>;
    if (ACCOUNT_NUMBER.test(value)) return <>{formatAccountNumber(value)}</>;
    return <>{value}</>;
  }
  if (Array.isArray(value) && value.length === 0) return <span className="muted">none</span>;
  if (typeof value === "object" && Object.keys(value).length === 0) return <span className="muted">none</span>;
  if (Array.isArray(value)) return <>{value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ")}</>;
  if (typeof value === "object") return <Fields fields={value as Record<string, unknown>} />;
  return <>{String(value)}</>;
}

/** An object's fields as a two-column table. */
function Fields({ fields, label }: { fields: Record<string, unknown>; label?: string }) {
  return (
    <table className="fields" aria-label={label}>
      <tbody>
        {Object.entries(fields).map(([key, value]) => (
          <tr key={key}>
            <th scope="row">{words(key)}</th>
            <td>
              <Value name={key} value={value} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** An event's own fields (the payload is `{"<EventType>": {...}}` or the fields). */
function eventFields(event: EventView): Record<string, unknown> {
  const payload = event.payload as Record<string, unknown> | null;
  if (payload && typeof payload === "object") {
    const inner = payload[event.event_type];
    if (Object.keys(payload).length === 1 && inner && typeof inner === "object") return inner as Record<string, unknown>;
    return payload;
  }
  // An event with no fields is serialized as its name alone.
  return payload === event.event_type || payload === null ? {} : { value: payload };
}

const TYPES = ["account", "client", "staff", "transfer"];

export function AuditPage() {
  const [stream, setStream] = useState<{ type: string; id: string } | null>(null);
  const [held] = useHeld();
  return (
    <section>
      <h1>Audit</h1>
      <StreamPicker onPick={setStream} />
      <p className="muted" aria-label="Held digest">
        {held.digest ? `Proofs are checked against the digest you hold: #${held.digest.sequence}, over ${held.digest.tree_size.toLocaleString()} events.` : "Hold a digest to prove events against it."}{" "}
        <Link to="/verify">{held.digest ? "Change it" : "Hold one"}</Link>
      </p>
      {stream ? <StreamView key={`${stream.type}/${stream.id}`} type={stream.type} id={stream.id} held={held} /> : <RecentEvents onPick={setStream} />}
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
  const pager = usePager(25);
  const log = useLoad(() => api.get<Page<AuditEntry>>(`/v1/audit/log${query({ cursor: pager.cursor, limit: pager.size })}`), [pager.cursor, pager.size]);
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
                <td>{formatWhen(entry.occurred_at)}</td>
                <td>{entry.event_type}</td>
                <td>
                  <button
                    type="button"
                    className="link"
                    title={entry.aggregate_id}
                    onClick={() => onPick({ type: entry.aggregate_type, id: entry.aggregate_id })}
                  >
                    {entry.aggregate_type} {idTail(entry.aggregate_id)} #{entry.sequence}
                  </button>
                </td>
                <td title={entry.actor_id}>
                  {entry.actor_username ?? idTail(entry.actor_id)} <span className="muted">({entry.actor_role})</span>
                </td>
                <td title={entry.correlation_id}>{idTail(entry.correlation_id)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Pager pager={pager} nextCursor={log.data?.next_cursor} list={log.data} noun={["event", "events"]} />
      </Loading>
    </>
  );
}

/**
 * A stream's evidence to keep: every event as stored (payload, metadata with its hash
 * chain) and the stream's verification, with who exported it and when.
 */
async function evidence(type: string, id: string, exportedBy: string): Promise<string> {
  const events = await allPages<EventView>(`/v1/audit/streams/${type}/${id}/events`);
  const verification = await api.get<Verification>(`/v1/audit/verify${query({ aggregate_type: type, id })}`);
  const file = { kind: "ledgerline-stream-evidence", stream: { aggregate_type: type, id }, exported_at: new Date().toISOString(), exported_by: exportedBy, verification, events };
  return JSON.stringify(file, null, 2);
}

function StreamView({ type, id, held }: { type: string; id: string; held: Held }) {
  const session = useContext(SessionContext);
  const [exporting, setExporting] = useState(false);
  async function exportEvidence() {
    setExporting(true);
    try {
      saveFile(`evidence-${type}-${id}.json`, await evidence(type, id, session?.username ?? ""), "application/json");
      setProblem(null);
    } catch (error) {
      setProblem(toProblem(error));
    } finally {
      setExporting(false);
    }
  }
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
      <h2 className="capitalize">{type}</h2>
      <p className="row">
        <Id id={id} type={type} />
        <button type="button" onClick={exportEvidence} disabled={exporting} aria-busy={exporting}>
          Download evidence
        </button>
      </p>
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
                  {meta.occurred_at ? formatWhen(meta.occurred_at) : ""} · {meta.actor_role} <span title={meta.actor_id}>{meta.actor_id ? idTail(meta.actor_id) : ""}</span>
                </span>
                <code className="hash" title={meta.hash}>
                  {meta.hash?.slice(0, 16)}
                </code>{" "}
                <ProveButton held={held} type={type} id={id} sequence={event.sequence} hash={meta.hash} />
                {Object.keys(eventFields(event)).length > 0 && <Fields fields={eventFields(event)} label={`Event ${event.sequence} fields`} />}
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
        <div className="state">
          {state && typeof state === "object" ? <Fields fields={state as Record<string, unknown>} label="State" /> : <p aria-label="State">{String(state)}</p>}
        </div>
      )}
    </>
  );
}

type Failure = { aggregate_type: string; aggregate_id: string; sequence: number; problem: string };

type LedgerProblem = { problem: string } & Record<string, unknown>;
type LedgerReport = { ok: boolean; events: number; digests: number; latest_digest: [number, number] | null; problems: LedgerProblem[]; more_problems: number };

/** One problem of the ledger check in words (the API's names, docs/audit.md). */
function describeLedgerProblem(p: LedgerProblem): string {
  switch (p.problem) {
    case "event_changed":
      return `${p.aggregate_type} ${p.aggregate_id} event ${p.sequence} (place ${p.leaf}) is not the event logged there: modified or moved`;
    case "events_missing":
      return p.from === p.to ? `the event at place ${p.from} is gone` : `the events at places ${p.from} to ${p.to} are gone`;
    case "chain": {
      const f = p.failure as Failure;
      return `${f.aggregate_type} ${f.aggregate_id} event ${f.sequence}: ${f.problem.replace(/_/g, " ")}`;
    }
    case "digest_invalid":
      return `digest ${p.sequence} does not verify: ${p.detail}`;
    case "digest_missing":
      return `digests are missing before ${p.before}`;
    case "digest_root_mismatch":
      return `digest ${p.sequence} signed another history: places ${p.from} to ${Number(p.to) - 1} were rewritten`;
    case "history_truncated":
      return `digest ${p.sequence} covers ${p.tree_size} events but only ${p.events} remain`;
    default:
      return p.problem.replace(/_/g, " ");
  }
}

/** The whole ledger held against every signed digest, on the server. */
function LedgerCheck() {
  const [report, setReport] = useState<LedgerReport | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [checking, setChecking] = useState(false);
  async function check() {
    setChecking(true);
    try {
      setReport(await api.get<LedgerReport>("/v1/audit/ledger/verify"));
      setProblem(null);
    } catch (error) {
      setProblem(toProblem(error));
    } finally {
      setChecking(false);
    }
  }
  return (
    <>
      <h2>Ledger and digests</h2>
      <p>Recomputes every logged event's leaf and the Merkle root at each signed digest, and checks the digests' signatures and sequence.</p>
      <button type="button" onClick={check} disabled={checking} aria-busy={checking}>
        {checking ? "Checking…" : "Check the ledger against its digests"}
      </button>
      <ProblemBanner problem={problem} />
      {report && (
        <div role="status" className={`banner ${report.ok ? "ok" : "error"}`}>
          {report.ok ? "Intact" : "Tampering found"}: {report.events.toLocaleString()} events, {report.digests.toLocaleString()} {report.digests === 1 ? "digest" : "digests"} checked
          {report.latest_digest && <> (the latest, #{report.latest_digest[1]}, over {report.latest_digest[0].toLocaleString()} events)</>}.
          {!report.ok && (
            <ul aria-label="Ledger problems">
              {report.problems.slice(0, 100).map((p, i) => (
                <li key={i}>{describeLedgerProblem(p)}</li>
              ))}
              {report.problems.length + report.more_problems > 100 && <li>and {(report.problems.length + report.more_problems - 100).toLocaleString()} more</li>}
            </ul>
          )}
        </div>
      )}
    </>
  );
}

/** How often a run being followed is asked about. */
const FOLLOW_MS = 1000;

export function VerifyPage() {
  const [run, setRun] = useState<VerificationRun | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [starting, setStarting] = useState(false);
  // Bumped when a poll fails, so that the next one is still made.
  const [retry, setRetry] = useState(0);
  const following = run !== null && (run.status === "queued" || run.status === "running");

  // The latest run, so an auditor coming back sees the last result, or one still going.
  useEffect(() => {
    let gone = false;
    api
      .get<Page<VerificationRun>>("/v1/audit/verifications?limit=1")
      // A run started meanwhile on this page is newer than what the list said.
      .then((page) => !gone && setRun((current) => current ?? page.items[0] ?? null))
      .catch((error) => !gone && setProblem(toProblem(error)));
    return () => {
      gone = true;
    };
  }, []);

  // A run in progress is followed until it is done.
  useEffect(() => {
    if (!following || !run) return;
    const timer = setTimeout(async () => {
      try {
        setRun(await api.get<VerificationRun>(`/v1/audit/verifications/${run.id}`));
        setProblem(null);
      } catch (error) {
        setProblem(toProblem(error));
        setRetry((n) => n + 1);
      }
    }, FOLLOW_MS);
    return () => clearTimeout(timer);
  }, [following, run, retry]);

  async function verify() {
    setStarting(true);
    try {
      setRun(await api.post<VerificationRun>("/v1/audit/verifications"));
      setProblem(null);
    } catch (error) {
      setProblem(toProblem(error));
    } finally {
      setStarting(false);
    }
  }
  const failures = (run?.failures ?? []) as unknown as Failure[];
  const [held, setHeld] = useHeld();
  return (
    <section>
      <h1>Integrity</h1>
      <HeldDigestPanel held={held} onChange={setHeld} />
      <LedgerCheck />
      <h2>Hash chains</h2>
      <p>Recomputes every event's hash and checks each stream's chain. A large store takes a while: the check runs on the server, and you may leave this page and come back.</p>
      <button type="button" onClick={verify} disabled={starting || following}>
        {following ? "Verifying…" : "Verify all streams"}
      </button>
      <ProblemBanner problem={problem} />
      {run && following && (
        <p role="status" className="banner">
          {run.status === "queued" ? "Waiting to start" : "Verifying"}: {run.streams_checked.toLocaleString()} streams, {run.events_checked.toLocaleString()} events checked so far.
        </p>
      )}
      {run && run.status === "failed" && (
        <p role="status" className="banner error">
          The verification could not finish after {run.events_checked.toLocaleString()} events: {run.error}. Start it again; if it fails again, tell the system's administrators.
        </p>
      )}
      {run && run.status === "done" && (
        <div role="status" className={`banner ${run.ok ? "ok" : "error"}`}>
          {run.ok ? "Intact" : "Tampering found"}: {run.streams_checked.toLocaleString()} streams, {run.events_checked.toLocaleString()} events checked
          {run.finished_at && <> (finished {formatWhen(run.finished_at)})</>}.
          {!run.ok && (
            <ul aria-label="Failures">
              {failures.map((f) => (
                <li key={`${f.aggregate_id}/${f.sequence}/${f.problem}`}>
                  {f.aggregate_type} {f.aggregate_id} event {f.sequence}: {f.problem.replace(/_/g, " ")}
                </li>
              ))}
              {run.failure_count > failures.length && <li>and {(run.failure_count - failures.length).toLocaleString()} more</li>}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
