// Small pieces every screen uses: loading and error states, fields with their errors,
// a pager, and a hook that loads data.

import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { latestOnly } from "./lib/latest";
import { ApiError, describe, type Problem } from "./lib/problems";

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

export function ProblemBanner({ problem }: { problem: Problem | null }) {
  if (!problem) return null;
  // Field errors are shown at their fields; the banner only points to them.
  const text = problem.errors?.length ? "Some fields need attention; see the messages below them." : describe(problem);
  return (
    <div role="alert" className="banner error">
      {text}
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
}) {
  const id = `field-${props.name}`;
  const describedBy = props.error ? `${id}-error` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.options ? (
        <select id={id} name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value)} aria-invalid={!!props.error} aria-describedby={describedBy}>
          {props.options.map((option) => (
            <option key={option} value={option}>
              {option || "—"}
            </option>
          ))}
        </select>
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
      {props.error && (
        <span id={`${id}-error`} className="field-error">
          {props.error}
        </span>
      )}
    </div>
  );
}

/** Previous/next over cursor pages: keeps the cursors seen so far. */
export function usePager() {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const current = cursors[cursors.length - 1];
  return {
    cursor: current,
    page: cursors.length,
    next: (cursor: string) => setCursors([...cursors, cursor]),
    previous: () => setCursors(cursors.length > 1 ? cursors.slice(0, -1) : cursors),
    reset: () => setCursors([null]),
  };
}

export function Pager({ pager, nextCursor }: { pager: ReturnType<typeof usePager>; nextCursor: string | null | undefined }) {
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" onClick={pager.previous} disabled={pager.page === 1}>
        Previous
      </button>
      <span>Page {pager.page}</span>
      <button type="button" onClick={() => nextCursor && pager.next(nextCursor)} disabled={!nextCursor}>
        Next
      </button>
    </nav>
  );
}
