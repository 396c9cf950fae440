import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, query, type ClientView, type Page } from "../api/client";
import { Empty, Field, Loading, Pager, ProblemBanner, SortHeader, toProblem, useCommand, useDraft, useLoad, usePager, useRole } from "../components";
import { formatDay } from "../lib/format";
import { fieldErrors, type Problem } from "../lib/problems";

export function ClientsPage() {
  const role = useRole();
  const [search, setSearch] = useState("");
  const [q, setQ] = useState("");
  const pager = usePager(25);
  const [sort, setSort] = useState<"newest" | "oldest" | "name">("newest");
  const sortBy = (next: typeof sort) => {
    pager.reset();
    setSort(next);
  };
  const { data, problem, loading } = useLoad(
    () => api.get<Page<ClientView>>(`/v1/clients${query({ q, sort, cursor: pager.cursor, limit: pager.size })}`),
    [q, sort, pager.cursor, pager.size],
  );
  // A refused search shows no list: the one before it would look like its results.
  const shown = problem ? undefined : data;
  return (
    <section>
      <header className="row">
        <h1>Clients</h1>
        {role === "agent" && (
          <Link className="button" to="/clients/new">
            Onboard a client
          </Link>
        )}
      </header>
      <form
        role="search"
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          pager.reset();
          setQ(search);
        }}
      >
        <label htmlFor="search" className="visually-hidden">
          Search by name, email or account number
        </label>
        <input id="search" className="search" type="search" placeholder="Name, email or account number" value={search} onChange={(e) => setSearch(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      <ProblemBanner problem={problem} />
      <Loading loading={loading}>
        <Empty when={!!shown && shown.items.length === 0}>No clients{q ? ` match “${q}”` : " yet"}.</Empty>
        {shown && shown.items.length > 0 && (
          <table>
            <thead>
              <tr>
                <SortHeader label="Name (by last name)" direction={sort === "name" ? "ascending" : null} onSort={() => sortBy("name")} />
                <th>Email</th>
                <th>Status</th>
                <SortHeader
                  label="Since"
                  direction={sort === "newest" ? "descending" : sort === "oldest" ? "ascending" : null}
                  onSort={() => sortBy(sort === "newest" ? "oldest" : "newest")}
                />
              </tr>
            </thead>
            <tbody>
              {shown.items.map((client) => (
                <tr key={client.id}>
                  <td>
                    <Link to={`/clients/${client.id}`}>
                      {client.erased ? <span className="muted">erased client</span> : `${client.first_name ?? "—"} ${client.last_name ?? ""}`}
                    </Link>
                  </td>
                  <td>{client.email ?? "—"}</td>
                  <td>
                    <span className={`status ${client.status}`}>{client.status}</span>
                    {client.erased && <span className="status erased">erased</span>}
                  </td>
                  <td>{formatDay(client.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager pager={pager} nextCursor={shown?.next_cursor} list={shown} noun={["client", "clients"]} />
      </Loading>
    </section>
  );
}

const EMPTY_CLIENT = {
  first_name: "", last_name: "", date_of_birth: "", gender: "unspecified", email: "", phone: "",
  line1: "", city: "", state: "", country: "", postal_code: "",
};

export function OnboardPage() {
  const navigate = useNavigate();
  const [form, setForm, clearForm] = useDraft("client", EMPTY_CLIENT);
  const [problem, setProblem] = useState<Problem | null>(null);
  const command = useCommand();
  const busy = command.busy;
  const errors = fieldErrors(problem ?? undefined);
  const set = (key: keyof typeof EMPTY_CLIENT) => (value: string) => {
    setForm({ ...form, [key]: value });
    command.forget();
  };
  async function submit(event: FormEvent) {
    event.preventDefault();
    try {
      const { line1, city, state, country, postal_code, ...person } = form;
      const outcome = await command.run((key) =>
        api.post<{ id: string }>("/v1/clients", { ...person, address: { line1, city, state, country, postal_code } }, key),
      );
      if (outcome.ran) {
        clearForm();
        navigate(`/clients/${outcome.value.id}`);
      }
    } catch (error) {
      setProblem(toProblem(error));
    }
  }
  return (
    <section>
      <h1>Onboard a client</h1>
      <ProblemBanner
        problem={problem}
        shown={["first_name", "last_name", "date_of_birth", "gender", "email", "phone", "address.line1", "address.city", "address.state", "address.country", "address.postal_code"]}
      />
      <form onSubmit={submit} className="grid" noValidate>
        <Field label="First name" name="first_name" value={form.first_name} onChange={set("first_name")} error={errors.first_name} />
        <Field label="Last name" name="last_name" value={form.last_name} onChange={set("last_name")} error={errors.last_name} />
        <Field label="Date of birth" name="date_of_birth" type="date" value={form.date_of_birth} onChange={set("date_of_birth")} error={errors.date_of_birth} />
        <Field label="Gender" name="gender" value={form.gender} onChange={set("gender")} error={errors.gender} options={["unspecified", "female", "male", "other"]} />
        <Field label="Email" name="email" type="email" value={form.email} onChange={set("email")} error={errors.email} />
        <Field label="Phone" name="phone" type="tel" value={form.phone} onChange={set("phone")} error={errors.phone} />
        <Field label="Address" name="line1" value={form.line1} onChange={set("line1")} error={errors["address.line1"]} />
        <Field label="City" name="city" value={form.city} onChange={set("city")} error={errors["address.city"]} />
        <Field label="State or region" name="state" value={form.state} onChange={set("state")} error={errors["address.state"]} />
        <Field label="Country (ISO code, e.g. IE)" name="country" value={form.country} onChange={set("country")} error={errors["address.country"]} />
        <Field label="Postal code" name="postal_code" value={form.postal_code} onChange={set("postal_code")} error={errors["address.postal_code"]} />
        <div className="actions">
          <button type="submit" disabled={busy} aria-busy={busy}>
            {busy ? "Saving…" : "Onboard"}
          </button>
        </div>
      </form>
    </section>
  );
}
