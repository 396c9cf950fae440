import { useState, type FormEvent } from "react";
import { api, query, type LogEntry, type Page, type StaffView } from "../api/client";
import type { Role } from "../auth";
import { Empty, Field, Loading, Pager, ProblemBanner, toProblem, useLoad, usePager } from "../components";
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
  const staff = useLoad(() => api.get<Page<StaffView>>(`/v1/staff${query({ cursor: pager.cursor, limit: 50 })}`), [pager.cursor]);
  const [problem, setProblem] = useState<Problem | null>(null);
  const act = async (path: string, method: "post" | "delete" = "post") => {
    try {
      const answer = await (method === "post" ? api.post<{ id: string; version: number }>(path) : api.delete<{ id: string; version: number }>(path));
      setProblem(null);
      staff.refresh((page) => page.items.some((m) => m.id === answer.id && m.version >= answer.version));
    } catch (error) {
      setProblem(toProblem(error));
    }
  };
  return (
    <section>
      <h1>Staff</h1>
      <ProblemBanner problem={staff.problem ?? problem} />
      <Loading loading={staff.loading}>
        <Empty when={!!staff.data && staff.data.items.length === 0}>No staff yet.</Empty>
        <table>
          <thead>
            <tr>
              <th>Username</th>
              <th>Name</th>
              <th>Role</th>
              <th>Status</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {staff.data?.items.map((member) => (
              <tr key={member.id}>
                <td>{member.username}</td>
                <td>{member.full_name}</td>
                <td>{member.role}</td>
                <td>
                  <span className={`status ${member.status}`}>{member.status}</span>
                </td>
                <td>
                  {roles.includes(member.role) && member.status !== "deleted" && (
                    <span className="actions">
                      {member.status === "enabled" ? (
                        <button type="button" onClick={() => act(`/v1/staff/${member.id}/disable`)} aria-label={`Disable ${member.username}`}>
                          Disable
                        </button>
                      ) : (
                        <button type="button" onClick={() => act(`/v1/staff/${member.id}/enable`)} aria-label={`Enable ${member.username}`}>
                          Enable
                        </button>
                      )}
                      <button
                        type="button"
                        className="danger"
                        aria-label={`Delete ${member.username}`}
                        onClick={() => window.confirm(`Delete ${member.username} for good?`) && act(`/v1/staff/${member.id}`, "delete")}
                      >
                        Delete
                      </button>
                    </span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <Pager pager={pager} nextCursor={staff.data?.next_cursor} />
      </Loading>
      {roles.length > 0 && <CreateStaff roles={roles} onCreated={(id) => staff.refresh((page) => page.items.some((m) => m.id === id))} />}
    </section>
  );
}

function CreateStaff({ roles, onCreated }: { roles: string[]; onCreated: (id: string) => void }) {
  const empty = { username: "", email: "", full_name: "", role: roles[0], password: "" };
  const [form, setForm] = useState(empty);
  const [problem, setProblem] = useState<Problem | null>(null);
  const errors = fieldErrors(problem ?? undefined);
  const set = (key: keyof typeof empty) => (value: string) => setForm({ ...form, [key]: value });
  async function submit(event: FormEvent) {
    event.preventDefault();
    try {
      const created = await api.post<{ id: string }>("/v1/staff", form);
      setProblem(null);
      setForm(empty);
      onCreated(created.id);
    } catch (error) {
      setProblem(toProblem(error));
    }
  }
  return (
    <form onSubmit={submit} className="grid" noValidate aria-label="Add a member of staff">
      <h2>Add a member of staff</h2>
      <ProblemBanner problem={problem} />
      <Field label="Username" name="username" value={form.username} onChange={set("username")} error={errors.username} />
      <Field label="Full name" name="full_name" value={form.full_name} onChange={set("full_name")} error={errors.full_name} />
      <Field label="Email" name="staff-email" value={form.email} onChange={set("email")} error={errors.email} />
      <Field label="Role" name="role" value={form.role} onChange={set("role")} error={errors.role} options={roles} />
      <Field label="Initial password" name="password" type="password" value={form.password} onChange={set("password")} error={errors.password} />
      <div className="actions">
        <button type="submit">Add</button>
      </div>
    </form>
  );
}

export function SystemLogPage() {
  const [filters, setFilters] = useState({ level: "", category: "", actor: "" });
  const pager = usePager();
  const log = useLoad(() => api.get<Page<LogEntry>>(`/v1/system-log${query({ ...filters, cursor: pager.cursor, limit: 50 })}`), [filters, pager.cursor]);
  const set = (key: keyof typeof filters) => (value: string) => {
    pager.reset();
    setFilters({ ...filters, [key]: value });
  };
  return (
    <section>
      <h1>System log</h1>
      <form className="row" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Level" name="level" value={filters.level} onChange={set("level")} options={["", "info", "warn", "error"]} />
        <Field label="Category" name="category" value={filters.category} onChange={set("category")} options={["", "sign-in", "sign-in-failed", "denied", "staff", "projection"]} />
        <Field label="Actor id" name="actor" value={filters.actor} onChange={set("actor")} />
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
                <td>{entry.occurred_at.replace("T", " ").slice(0, 19)}</td>
                <td>{entry.level}</td>
                <td>{entry.category}</td>
                <td>{entry.message}</td>
                <td>{entry.actor_role ? `${entry.actor_role} ` : ""}{entry.actor_id?.slice(0, 8) ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Pager pager={pager} nextCursor={log.data?.next_cursor} />
      </Loading>
    </section>
  );
}
