// Small pieces every screen uses: loading and error states, fields with their errors,
// a pager, a hook that loads data, one that runs a command, confirmations, and the
// signed-in session.

import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import type { Role, Session } from "./auth";
import { Intent, type Outcome } from "./lib/intent";
import { latestOnly } from "./lib/latest";
import { ApiError, describe, type Problem } from "./lib/problems";

export const SessionContext = createContext<Session | null>(null);

/** Where drafts live: this tab's session storage, by page and field. */
export const DRAFTS = "ledgerline.draft:";

/**
 * A form value kept in this tab's session storage for its page, so a session that ends
 * mid-typing loses nothing: sign-in comes back to the page with the form as it was.
 * `clear` once the form has done its work. Never for passwords.
 */
export function useDraft<T>(name: string, initial: T): [T, (value: T) => void, () => void] {
  const key = `${DRAFTS}${window.location.pathname}:${name}`;
  const [value, setValue] = useState<T>(() => {
    const kept = sessionStorage.getItem(key);
    if (kept !== null) {
      try {
        return JSON.parse(kept) as T;
      } catch {
        sessionStorage.removeItem(key);
      }
    }
    return initial;
  });
  const initialRef = useRef(initial);
  const set = useCallback(
    (next: T) => {
      setValue(next);
      sessionStorage.setItem(key, JSON.stringify(next));
    },
    [key],
  );
  const clear = useCallback(() => {
    setValue(initialRef.current);
    sessionStorage.removeItem(key);
  }, [key]);
  return [value, set, clear];
}

/** The signed-in role: screens offer only what it may do (the API decides). */
export function useRole(): Role | null {
  return useContext(SessionContext)?.role ?? null;
}

/**
 * A command control: `busy` while its request runs (a second click meanwhile sends
 * nothing), and one Idempotency-Key per intent, kept for the retries of an attempt the
 * network lost (lib/intent). Call `forget` when the values it sends change.
 */
export function useCommand() {
  const intent = useRef(new Intent());
  const [busy, setBusy] = useState(false);
  const run = useCallback(async <T,>(send: (key: string) => Promise<T>): Promise<Outcome<T>> => {
    setBusy(true);
    try {
      return await intent.current.run(send);
    } finally {
      setBusy(intent.current.busy);
    }
  }, []);
  const forget = useCallback(() => intent.current.forget(), []);
  return { busy, run, forget };
}

/**
 * A second thought before a risky action: what will happen, an optional reason to
 * record, and the two choices. Escape cancels.
 */
export function Confirm(props: {
  label: string;
  children: ReactNode;
  confirm: string;
  busy?: boolean;
  reason?: { value: string; onChange: (value: string) => void };
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <div role="dialog" aria-label={props.label} className="confirm" onKeyDown={(e) => e.key === "Escape" && props.onCancel()}>
      <p>{props.children}</p>
      {props.reason && (
        <div className="field">
          <label htmlFor="confirm-reason">Reason (recorded with it)</label>
          <input id="confirm-reason" value={props.reason.value} onChange={(e) => props.reason?.onChange(e.target.value)} autoFocus />
        </div>
      )}
      <button type="button" className="danger" onClick={props.onConfirm} disabled={props.busy} aria-busy={props.busy}>
        {props.confirm}
      </button>
      <button type="button" onClick={props.onCancel} autoFocus={!props.reason}>
        Cancel
      </button>
    </div>
  );
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Loads data for a screen. The read side shows a command's effect within a second, not
 * at once, so a first load that finds nothing (404) retries for a moment, and
 * `refresh(until)` polls until the data shows what the caller just did.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [loading, setLoading] = useState(true);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  const loads = useRef(latestOnly());
  const refresh = useCallback(
    async (until?: (value: T) => boolean, timeout = 3000) => {
      const isCurrent = loads.current.begin();
      const deadline = Date.now() + timeout;
      for (;;) {
        try {
          const value = await run();
          if (!isCurrent()) return;
          setData(value);
          setProblem(null);
          if (!until || until(value) || Date.now() > deadline) return;
        } catch (error) {
          if (!isCurrent()) return;
          const problem = toProblem(error);
          if (problem.status !== 404 || Date.now() > deadline) {
            setProblem(problem);
            return;
          }
        }
        await sleep(150);
      }
    },
    [run],
  );
  const reload = useCallback(() => {
    setLoading(true);
    refresh(undefined, 2000).finally(() => setLoading(false));
  }, [refresh]);
  useEffect(reload, [reload]);
  return { data, problem, loading, reload, refresh };
}

export function toProblem(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  return { type: "/problems/network", title: "Network error", status: 0, detail: String(error) };
}

/**
 * A problem in words. Field errors are shown at the fields named in `shown`; the banner
 * points to those and spells out any other, so no message is lost.
 */
export function ProblemBanner({ problem, shown = [] }: { problem: Problem | null; shown?: string[] }) {
  if (!problem) return null;
  const errors = problem.errors ?? [];
  if (!errors.length) {
    return (
      <div role="alert" className="banner error">
        {describe(problem)}
      </div>
    );
  }
  const elsewhere = errors.filter((e) => !shown.includes(e.field));
  return (
    <div role="alert" className="banner error">
      {elsewhere.length < errors.length && <p>Some fields need attention; see the messages below them.</p>}
      {elsewhere.length > 0 && (
        <ul>
          {elsewhere.map((e) => (
            <li key={e.field}>
              {e.field.replace(/_/g, " ")}: {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ loading, children }: { loading: boolean; children: ReactNode }) {
  return loading ? <p aria-busy="true" className="muted">Loading…</p> : <>{children}</>;
}

export function Empty({ when, children }: { when: boolean; children: ReactNode }) {
  return when ? <p className="muted">{children}</p> : null;
}

export function Field(props: {
  label: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  error?: string;
  type?: string;
  required?: boolean;
  options?: string[];
  /** What an option shows, when not its value. */
  optionLabel?: (value: string) => string;
  /** What the value must be, shown before anything is sent. */
  hint?: string;
  /** Several lines (a textarea). */
  rows?: number;
}) {
  const id = `field-${props.name}`;
  const describedBy = [props.hint ? `${id}-hint` : "", props.error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.options ? (
        <select id={id} name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value)} aria-invalid={!!props.error} aria-describedby={describedBy}>
          {props.options.map((option) => (
            <option key={option} value={option}>
              {props.optionLabel ? props.optionLabel(option) : option || "—"}
            </option>
          ))}
        </select>
      ) : props.rows ? (
        <textarea
          id={id}
          name={props.name}
          rows={props.rows}
          value={props.value}
          required={props.required}
          onChange={(e) => props.onChange(e.target.value)}
          aria-invalid={!!props.error}
          aria-describedby={describedBy}
        />
      ) : (
        <input
          id={id}
          name={props.name}
          type={props.type ?? "text"}
          value={props.value}
          required={props.required}
          onChange={(e) => props.onChange(e.target.value)}
          aria-invalid={!!props.error}
          aria-describedby={describedBy}
        />
      )}
      {props.hint && (
        <span id={`${id}-hint`} className="muted field-hint">
          {props.hint}
        </span>
      )}
      {props.error && (
        <span id={`${id}-error`} className="field-error">
          {props.error}
        </span>
      )}
    </div>
  );
}

export const PAGE_SIZES = [25, 50, 100, 200];

/** Previous/next over cursor pages (the cursors seen so far) and the page size. */
export function usePager(initialSize = 50) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [size, setSize] = useState(initialSize);
  const [chosen, setChosen] = useState(false);
  const current = cursors[cursors.length - 1];
  return {
    cursor: current,
    page: cursors.length,
    size,
    /** The size was chosen by the person (the pager stays to change it back). */
    chosen,
    next: (cursor: string) => setCursors([...cursors, cursor]),
    previous: () => setCursors(cursors.length > 1 ? cursors.slice(0, -1) : cursors),
    reset: () => setCursors([null]),
    resize: (next: number) => {
      setSize(next);
      setChosen(true);
      setCursors([null]);
    },
  };
}

/** Where this page sits in the whole list: "51–100 of 1,234 clients". */
export function rangeWords(
  pager: { page: number; size: number },
  shown: number,
  total: number | undefined,
  exact: boolean | undefined,
  [one, many]: readonly [string, string],
): string {
  const count = (n: number) => new Intl.NumberFormat().format(n);
  if (total === undefined) return "";
  if (total === 0) return `No ${many}`;
  const noun = total === 1 && exact !== false ? one : many;
  const first = (pager.page - 1) * pager.size + 1;
  const last = first + shown - 1;
  const of = exact === false ? `more than ${count(total)}` : count(total);
  return shown === total ? `${count(total)} ${noun}` : `${count(first)}–${count(last)} of ${of} ${noun}`;
}

/** The list's count, then previous and next and the page size, shown once there is more than one page (or the size was chosen). */
export function Pager({
  pager,
  nextCursor,
  list,
  noun = ["item", "items"],
}: {
  pager: ReturnType<typeof usePager>;
  nextCursor: string | null | undefined;
  /** The page shown, when its list counts its items. */
  list?: { items: unknown[]; total?: number | null; total_exact?: boolean | null } | null;
  /** What the list holds, one and many. */
  noun?: readonly [string, string];
}) {
  const summary = list ? rangeWords(pager, list.items.length, list.total ?? undefined, list.total_exact ?? undefined, noun) : "";
  const single = pager.page === 1 && !nextCursor && !pager.chosen;
  return (
    <>
      {summary && (
        <p className="muted list-total" data-testid="list-total">
          {summary}
        </p>
      )}
      {!single && (
        <nav className="pager" aria-label="Pages">
          <label className="page-size">
            Rows per page{" "}
            <select value={pager.size} onChange={(e) => pager.resize(Number(e.target.value))}>
              {PAGE_SIZES.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          {pager.page > 1 && (
            <button type="button" onClick={pager.previous}>
              Previous
            </button>
          )}
          <span>Page {pager.page}</span>
          {nextCursor && (
            <button type="button" onClick={() => pager.next(nextCursor)}>
              Next
            </button>
          )}
        </nav>
      )}
    </>
  );
}

/** Offers `text` as a file named `name` to save. */
export function saveFile(name: string, text: string, type: string): void {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** Copies a value (an id) to the clipboard, and says so. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="link"
      aria-label={label}
      onClick={() => navigator.clipboard?.writeText(text).then(() => setCopied(true), () => setCopied(false))}
    >
      {copied ? "Copied" : "Copy"}
    </button>
  );
}

/** A column header that sorts the list by it; `direction` is how it sorts now, if it does. */
export function SortHeader({ label, direction, onSort }: { label: string; direction: "ascending" | "descending" | null; onSort: () => void }) {
  return (
    <th aria-sort={direction ?? "none"}>
      <button type="button" className="sort" onClick={onSort}>
        {label}
        <span aria-hidden="true">{direction === "ascending" ? " ▲" : direction === "descending" ? " ▼" : " ↕"}</span>
      </button>
    </th>
  );
}
