import { useState, type FormEvent } from "react";
import { api, query, type LogEntry, type Page, type StaffView } from "../api/client";
import type { Role } from "../auth";
import { Confirm, Empty, Field, Loading, Pager, ProblemBanner, SortHeader, toProblem, useCommand, useLoad, usePager } from "../components";
import { formatWhen, idTail, periodParams } from "../lib/format";
import { fieldErrors, type Problem } from "../lib/problems";

/** Whom each role manages (the backend enforces it; the UI only offers it). */
export function manageableRoles(role: Role): string[] {
  if (role === "root-admin") return ["admin"];
  if (role === "admin") return ["agent", "auditor"];
  return [];
}

export function StaffPage({ role }: { role: Role }) {
  const roles = manageableRoles(role);
  const pager = usePager();
  const [sort, setSort] = useState<"username" | "name" | "role">("username");
  const staff = useLoad(
    () => api.get<Page<StaffView>>(`/v1/staff${query({ sort, cursor: pager.cursor, limit: pager.size })}`),
    [sort, pager.cursor, pager.size],
  );
  const sortBy = (next: typeof sort) => () => {
    pager.reset();
    setSort(next);
  };
  const [problem, setProblem] = useState<Problem | null>(null);
  const [pending, setPending] = useState<{ member: StaffView; action: "disable" | "delete" } | null>(null);
  // The member whose details or password are being changed, below the table.
  const [editing, setEditing] = useState<StaffView | null>(null);
  const command = useCommand();
  const act = async (path: string, method: "post" | "delete" = "post") => {
    try {
      const outcome = await command.run((key) =>
        method === "post" ? api.post<{ id: string; version: number }>(path, undefined, key) : api.delete<{ id: string; version: number }>(path, key),
      );
      if (!outcome.ran) return;
      const answer = outcome.value;
      setProblem(null);
      setPending(null);
      staff.refresh((page) => page.items.some((m) => m.id === answer.id && m.version >= answer.version));
    } catch (error) {
      setPending(null);
      setProblem(toProblem(error));
    }
  };
  return (
    <section>
      <h1>{role === "root-admin" ? "Administrators" : "Staff"}</h1>
      <ProblemBanner problem={staff.problem ?? problem} />
      <Loading loading={staff.loading}>
        <Empty when={!!staff.data && staff.data.items.length === 0}>No staff yet.</Empty>
        <table>
          <thead>
            <tr>
              <SortHeader label="Username" direction={sort === "username" ? "ascending" : null} onSort={sortBy("username")} />
              <SortHeader label="Name" direction={sort === "name" ? "ascending" : null} onSort={sortBy("name")} />
              <th>Email</th>
              <SortHeader label="Role" direction={sort === "role" ? "ascending" : null} onSort={sortBy("role")} />
              <th>Status</th>
              <th>Last sign-in</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {staff.data?.items.map((member) => (
              <tr key={member.id}>
                <td>{member.username}</td>
                <td>{member.full_name}</td>
                <td>{member.email}</td>
                <td>{member.role}</td>
                <td>
                  <span className={`status ${member.status}`}>{member.status}</span>
                </td>
                <td>{member.last_sign_in_at ? formatWhen(member.last_sign_in_at) : <span className="muted">never</span>}</td>
                <td>
                  {roles.includes(member.role) && member.status !== "deleted" && pending?.member.id === member.id ? (
                    <Confirm
                      label={pending.action === "disable" ? `Confirm disabling ${member.username}` : `Confirm deleting ${member.username}`}
                      confirm={pending.action === "disable" ? "Disable" : "Delete for good"}
                      busy={command.busy}
                      onCancel={() => setPending(null)}
                      onConfirm={() =>
                        pending.action === "disable" ? act(`/v1/staff/${member.id}/disable`) : act(`/v1/staff/${member.id}`, "delete")
                      }
                    >
                      {pending.action === "disable"
                        ? `Disable ${member.username}? They are signed out everywhere and cannot sign in until enabled.`
                        : `Delete ${member.username} for good? This cannot be undone.`}
                    </Confirm>
                  ) : (
                    roles.includes(member.role) &&
                    member.status !== "deleted" && (
                      <span className="actions">
                        {member.status === "enabled" ? (
                          <button type="button" onClick={() => setPending({ member, action: "disable" })} aria-label={`Disable ${member.username}`} disabled={command.busy}>
                            Disable…
                          </button>
                        ) : (
                          <button type="button" onClick={() => act(`/v1/staff/${member.id}/enable`)} aria-label={`Enable ${member.username}`} disabled={command.busy}>
                            Enable
                          </button>
                        )}
                        <button type="button" onClick={() => setEditing(member)} aria-label={`Edit ${member.username}`} disabled={command.busy}>
                          Edit…
                        </button>
                        <button
                          type="button"
                          className="danger"
                          aria-label={`Delete ${member.username}`}
                          onClick={() => setPending({ member, action: "delete" })}
                          disabled={command.busy}
                        >
                          Delete…
                        </button>
                      </span>
                    )
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <Pager pager={pager} nextCursor={staff.data?.next_cursor} list={staff.data} noun={["member of staff", "members of staff"]} />
      </Loading>
      {editing && (
        <EditStaff
          key={editing.id}
          member={editing}
          onClose={() => setEditing(null)}
          onChanged={(version) => staff.refresh((page) => page.items.some((m) => m.id === editing.id && m.version >= version))}
        />
      )}
      {roles.length > 0 && <CreateStaff roles={roles} onCreated={(id) => staff.refresh((page) => page.items.some((m) => m.id === id))} />}
    </section>
  );
}

/** Correct a member's name or email, or set a new password for them. */
function EditStaff({ member, onClose, onChanged }: { member: StaffView; onClose: () => void; onChanged: (version: number) => void }) {
  const [details, setDetails] = useState({ full_name: member.full_name, email: member.email });
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const save = useCommand();
  const reset = useCommand();
  const errors = fieldErrors(problem ?? undefined);
  const set = (key: keyof typeof details) => (value: string) => {
    setDetails({ ...details, [key]: value });
    save.forget();
    setDone(null);
  };
  async function run(command: ReturnType<typeof useCommand>, send: (key: string) => Promise<{ version: number }>, message: string) {
    try {
      const outcome = await command.run(send);
      if (!outcome.ran) return;
      setProblem(null);
      setDone(message);
      setPassword("");
      onChanged(outcome.value.version);
    } catch (error) {
      setDone(null);
      setProblem(toProblem(error));
    }
  }
  // Only what changed is sent.
  const changes = {
    full_name: details.full_name.trim() !== member.full_name ? details.full_name.trim() : undefined,
    email: details.email.trim() !== member.email ? details.email.trim() : undefined,
  };
  return (
    <div className="panel" aria-label={`Change ${member.username}`} role="region">
      <h2>Change {member.username}</h2>
      <ProblemBanner problem={problem} shown={["full_name", "email", "password"]} />
      {done && <p role="status">{done}</p>}
      <form
        className="grid"
        noValidate
        aria-label="Details"
        onSubmit={(e) => {
          e.preventDefault();
          run(save, (key) => api.patch<{ version: number }>(`/v1/staff/${member.id}`, changes, key), "Details saved.");
        }}
      >
        <Field label="Full name" name="edit-full-name" value={details.full_name} onChange={set("full_name")} error={errors.full_name} />
        <Field label="Email" name="edit-email" value={details.email} onChange={set("email")} error={errors.email} />
        <div className="actions">
          <button type="submit" disabled={save.busy || (!changes.full_name && !changes.email)} aria-busy={save.busy}>
            Save details
          </button>
        </div>
      </form>
      <form
        className="grid"
        noValidate
        aria-label="Password"
        onSubmit={(e) => {
          e.preventDefault();
          run(reset, (key) => api.post<{ version: number }>(`/v1/staff/${member.id}/password`, { password }, key), `A new password is set; ${member.username} is signed out everywhere.`);
        }}
      >
        <Field
          label="New password"
          name="new-password"
          type="password"
          value={password}
          onChange={(value) => {
            setPassword(value);
            reset.forget();
            setDone(null);
          }}
          error={errors.password}
          hint="At least 12 characters, not made from their name. Tell it to them in person or by phone."
        />
        <div className="actions">
          <button type="submit" disabled={reset.busy || !password} aria-busy={reset.busy}>
            Set new password
          </button>
          <button type="button" onClick={onClose}>
            Done
          </button>
        </div>
      </form>
    </div>
  );
}

function CreateStaff({ roles, onCreated }: { roles: string[]; onCreated: (id: string) => void }) {
  const empty = { username: "", email: "", full_name: "", role: roles[0], password: "" };
  const [form, setForm] = useState(empty);
  const [problem, setProblem] = useState<Problem | null>(null);
  const command = useCommand();
  const errors = fieldErrors(problem ?? undefined);
  const set = (key: keyof typeof empty) => (value: string) => {
    setForm({ ...form, [key]: value });
    command.forget();
  };
  async function submit(event: FormEvent) {
    event.preventDefault();
    try {
      const outcome = await command.run((key) => api.post<{ id: string }>("/v1/staff", form, key));
      if (!outcome.ran) return;
      setProblem(null);
      setForm(empty);
      onCreated(outcome.value.id);
    } catch (error) {
      setProblem(toProblem(error));
    }
  }
  return (
    <form onSubmit={submit} className="grid" noValidate aria-label="Add a member of staff">
      <h2>Add a member of staff</h2>
      <ProblemBanner problem={problem} shown={["username", "full_name", "email", "role", "password"]} />
      <Field label="Username" name="username" value={form.username} onChange={set("username")} error={errors.username} />
      <Field label="Full name" name="full_name" value={form.full_name} onChange={set("full_name")} error={errors.full_name} />
      <Field label="Email" name="staff-email" value={form.email} onChange={set("email")} error={errors.email} />
      <Field label="Role" name="role" value={form.role} onChange={set("role")} error={errors.role} options={roles} />
      <Field
        label="Initial password"
        name="password"
        type="password"
        value={form.password}
        onChange={set("password")}
        error={errors.password}
        hint="At least 12 characters, and not a common word, name or pattern."
      />
      <div className="actions">
        <button type="submit" disabled={command.busy} aria-busy={command.busy}>
          Add
        </button>
      </div>
    </form>
  );
}

export function SystemLogPage() {
  const [filters, setFilters] = useState({ level: "", category: "", actor: "", from: "", to: "" });
  const pager = usePager();
  const log = useLoad(
    () =>
      api.get<Page<LogEntry>>(
        `/v1/system-log${query({
          level: filters.level,
          category: filters.category,
          actor: filters.actor.trim(),
          ...periodParams(filters.from, filters.to),
          cursor: pager.cursor,
          limit: pager.size,
        })}`,
      ),
    [filters, pager.cursor, pager.size],
  );
  const set = (key: keyof typeof filters) => (value: string) => {
    pager.reset();
    setFilters({ ...filters, [key]: value });
  };
  return (
    <section>
      <h1>System log</h1>
      <form className="row" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Level" name="level" value={filters.level} onChange={set("level")} options={["", "info", "warn", "error"]} />
        <Field
          label="Category"
          name="category"
          value={filters.category}
          onChange={set("category")}
          options={["", "sign-in", "sign-in-failed", "denied", "staff", "payee-lookup", "projection", "integration", "integrity"]}
        />
        <Field label="Actor (username or id)" name="actor" value={filters.actor} onChange={set("actor")} />
        <Field label="From" name="from" type="date" value={filters.from} onChange={set("from")} />
        <Field label="To" name="to" type="date" value={filters.to} onChange={set("to")} />
      </form>
      <ProblemBanner problem={log.problem} />
      <Loading loading={log.loading}>
        <Empty when={!!log.data && log.data.items.length === 0}>Nothing logged with these filters.</Empty>
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Level</th>
              <th>Category</th>
              <th>Message</th>
              <th>Actor</th>
            </tr>
          </thead>
          <tbody>
            {log.data?.items.map((entry) => (
              <tr key={entry.id} className={`level-${entry.level}`}>
                <td>{formatWhen(entry.occurred_at)}</td>
                <td>{entry.level}</td>
                <td>{entry.category}</td>
                <td>{entry.message}</td>
                <td title={entry.actor_id ?? undefined}>
                  {entry.actor_username ?? (entry.actor_id ? idTail(entry.actor_id) : "")}{" "}
                  {entry.actor_role && <span className="muted">({entry.actor_role})</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <Pager pager={pager} nextCursor={log.data?.next_cursor} list={log.data} noun={["entry", "entries"]} />
      </Loading>
    </section>
  );
}
