import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router-dom";
import { api, type AccountView, type ClientView, type Page } from "../api/client";
import { Confirm, Empty, Field, Loading, ProblemBanner, toProblem, useCommand, useLoad, useRole } from "../components";
import { formatDay } from "../lib/format";
import { formatMoney, parseAmount } from "../lib/money";
import { fieldErrors, type Problem } from "../lib/problems";

export function ClientPage() {
  const { id = "" } = useParams();
  const client = useLoad(() => api.get<ClientView>(`/v1/clients/${id}`), [id]);
  const accounts = useLoad(() => api.get<Page<AccountView>>(`/v1/clients/${id}/accounts?limit=200`), [id]);
  const role = useRole();
  const [problem, setProblem] = useState<Problem | null>(null);
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");
  const deactivation = useCommand();

  async function deactivate() {
    try {
      const outcome = await deactivation.run((key) =>
        api.post<{ version: number }>(`/v1/clients/${id}/deactivate`, { reason: reason.trim() || undefined }, key),
      );
      if (!outcome.ran) return;
      setAsking(false);
      setProblem(null);
      client.refresh((c) => c.version >= outcome.value.version);
    } catch (error) {
      setAsking(false);
      setProblem(toProblem(error));
    }
  }

  const c = client.data;
  return (
    <section>
      <ProblemBanner problem={client.problem ?? problem} />
      <Loading loading={client.loading}>
        {c && (
          <>
            <header className="row">
              <h1>
                {c.first_name} {c.last_name}
              </h1>
              <span className={`status ${c.status}`}>{c.status}</span>
            </header>
            <dl className="details">
              <dt>Email</dt>
              <dd>{c.email}</dd>
              <dt>Phone</dt>
              <dd>{c.phone}</dd>
              <dt>Address</dt>
              <dd>
                {c.address.line1}, {c.address.city} {c.address.state} {c.address.postal_code}, {c.address.country}
              </dd>
              <dt>Date of birth</dt>
              <dd>{c.date_of_birth ? formatDay(c.date_of_birth) : "—"}</dd>
            </dl>
            {role === "agent" && c.status === "active" && (
              <>
                <ContactForm client={c} onSaved={(version) => client.refresh((fresh) => fresh.version >= version)} />
                {asking ? (
                  <Confirm
                    label="Confirm deactivation"
                    confirm="Deactivate the client"
                    busy={deactivation.busy}
                    reason={{ value: reason, onChange: setReason }}
                    onCancel={() => setAsking(false)}
                    onConfirm={deactivate}
                  >
                    Deactivate {c.first_name} {c.last_name}? Their accounts stay as they are.
                  </Confirm>
                ) : (
                  <button type="button" className="danger" onClick={() => setAsking(true)}>
                    Deactivate client…
                  </button>
                )}
              </>
            )}
          </>
        )}
      </Loading>
      <h2>Accounts</h2>
      <ProblemBanner problem={accounts.problem} />
      <Loading loading={accounts.loading}>
        <Empty when={!!accounts.data && accounts.data.items.length === 0}>No accounts yet.</Empty>
        <ul className="cards">
          {accounts.data?.items.map((account) => (
            <li key={account.id}>
              <Link to={`/accounts/${account.id}`}>
                {account.account_type} · {formatMoney(account.balance)}
              </Link>{" "}
              <span className={`status ${account.status}`}>{account.status}</span>
            </li>
          ))}
        </ul>
      </Loading>
      {role === "agent" && c?.status === "active" && (
        <OpenAccountForm clientId={id} onOpened={(opened) => accounts.refresh((page) => page.items.some((a) => a.id === opened))} />
      )}
    </section>
  );
}

function ContactForm({ client, onSaved }: { client: ClientView; onSaved: (version: number) => void }) {
  const [email, setEmail] = useState(client.email ?? "");
  const [phone, setPhone] = useState(client.phone ?? "");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saved, setSaved] = useState(false);
  const command = useCommand();
  const errors = fieldErrors(problem ?? undefined);
  const edit = (set: (value: string) => void) => (value: string) => {
    set(value);
    setSaved(false);
    command.forget();
  };
  async function submit(event: FormEvent) {
    event.preventDefault();
    const change: Record<string, string> = {};
    if (email !== client.email) change.email = email;
    if (phone !== client.phone) change.phone = phone;
    try {
      const outcome = await command.run((key) => api.patch<{ version: number }>(`/v1/clients/${client.id}`, change, key));
      if (!outcome.ran) return;
      setProblem(null);
      setSaved(true);
      onSaved(outcome.value.version);
    } catch (error) {
      setSaved(false);
      setProblem(toProblem(error));
    }
  }
  return (
    <form onSubmit={submit} className="grid" noValidate aria-label="Contact details">
      <h2>Contact details</h2>
      <ProblemBanner problem={problem} shown={["email", "phone"]} />
      <Field label="Email" name="contact-email" value={email} onChange={edit(setEmail)} error={errors.email} />
      <Field label="Phone" name="contact-phone" value={phone} onChange={edit(setPhone)} error={errors.phone} />
      <div className="actions">
        <button type="submit" disabled={command.busy} aria-busy={command.busy}>
          Save contact details
        </button>
        {saved && <span role="status">Saved.</span>}
      </div>
    </form>
  );
}

function OpenAccountForm({ clientId, onOpened }: { clientId: string; onOpened: (id: string) => void }) {
  const [type, setType] = useState("checking");
  const [currency, setCurrency] = useState("EUR");
  const [deposit, setDeposit] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [local, setLocal] = useState<string | undefined>();
  const command = useCommand();
  const errors = fieldErrors(problem ?? undefined);
  const edit = (set: (value: string) => void) => (value: string) => {
    set(value);
    command.forget();
  };
  async function submit(event: FormEvent) {
    event.preventDefault();
    let initial_deposit: { amount_minor: number; currency: string } | undefined;
    if (deposit.trim()) {
      const parsed = parseAmount(deposit, currency);
      if (!parsed.ok) return setLocal(parsed.error);
      initial_deposit = { amount_minor: parsed.minor, currency };
    }
    setLocal(undefined);
    try {
      const outcome = await command.run((key) =>
        api.post<{ id: string }>(`/v1/clients/${clientId}/accounts`, { account_type: type, currency, initial_deposit }, key),
      );
      if (!outcome.ran) return;
      setProblem(null);
      setDeposit("");
      onOpened(outcome.value.id);
    } catch (error) {
      setProblem(toProblem(error));
    }
  }
  return (
    <form onSubmit={submit} className="grid" noValidate aria-label="Open an account">
      <h2>Open an account</h2>
      <ProblemBanner problem={problem} shown={["currency", "initial_deposit.amount_minor"]} />
      <Field label="Type" name="account_type" value={type} onChange={edit(setType)} options={["checking", "savings"]} />
      <Field label="Currency" name="currency" value={currency} onChange={edit((v) => setCurrency(v.toUpperCase()))} error={errors.currency} />
      <Field label="Initial deposit (optional)" name="initial_deposit" value={deposit} onChange={edit(setDeposit)} error={local ?? errors["initial_deposit.amount_minor"]} />
      <div className="actions">
        <button type="submit" disabled={command.busy} aria-busy={command.busy}>
          Open account
        </button>
      </div>
    </form>
  );
}
