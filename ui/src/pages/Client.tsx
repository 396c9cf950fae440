import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router-dom";
import { api, type AccountView, type ClientView, type Page, type Schemas, type TransactionView } from "../api/client";
import { Confirm, Empty, Field, Loading, ProblemBanner, toProblem, useCommand, useDraft, useLoad, useRole } from "../components";
import { formatAccountNumber, formatDay, formatWhen, idTail, isDebit, kindWords } from "../lib/format";
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
              <h1>{c.erased ? "Erased client" : `${c.first_name} ${c.last_name}`}</h1>
              <span>
                <span className={`status ${c.status}`}>{c.status}</span>
                {c.erased && <span className="status erased">erased</span>}
              </span>
            </header>
            {c.erased ? (
              <p className="muted" data-testid="erased">
                This client's personal data was erased. Their accounts and history stay; the audit trail records who erased them, when
                and why.
              </p>
            ) : (
              <dl className="details">
                <dt>Email</dt>
                <dd>{c.email}</dd>
                <dt>Phone</dt>
                <dd>{c.phone}</dd>
                <dt>Address</dt>
                <dd>
                  {c.address && `${c.address.line1}, ${c.address.city} ${c.address.state} ${c.address.postal_code}, ${c.address.country}`}
                </dd>
                <dt>Date of birth</dt>
                <dd>{c.date_of_birth ? formatDay(c.date_of_birth) : "—"}</dd>
              </dl>
            )}
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
        {accounts.data && accounts.data.items.length > 0 && (
          <table aria-label="Accounts">
            <thead>
              <tr>
                <th>Account</th>
                <th>Status</th>
                <th>Opened</th>
                <th className="number">Balance</th>
              </tr>
            </thead>
            <tbody>
              {accounts.data.items.map((account) => (
                <tr key={account.id}>
                  <td>
                    <Link to={`/accounts/${account.id}`}>
                      {account.account_type} {formatAccountNumber(account.account_number)}
                    </Link>
                  </td>
                  <td>
                    <span className={`status ${account.status}`}>{account.status}</span>
                  </td>
                  <td>{formatDay(account.opened_at)}</td>
                  <td className="number">{formatMoney(account.balance)}</td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              {totals(accounts.data.items).map((total) => (
                <tr key={total.currency}>
                  <th scope="row" colSpan={3}>
                    Total in {total.currency}
                  </th>
                  <td className="number" data-testid={`total-${total.currency}`}>
                    {formatMoney(total)}
                  </td>
                </tr>
              ))}
            </tfoot>
          </table>
        )}
      </Loading>
      {accounts.data && accounts.data.items.length > 0 && <Activity accounts={accounts.data.items} />}
      {c && <Mail client={c} canSend={role === "agent" && c.status === "active" && !c.erased && !!c.email} />}
      {role === "agent" && c?.status === "active" && (
        <OpenAccountForm clientId={id} onOpened={(opened) => accounts.refresh((page) => page.items.some((a) => a.id === opened))} />
      )}
    </section>
  );
}

/** The balances summed per currency (accounts in different currencies are not added). */
function totals(accounts: AccountView[]): { amount_minor: number; currency: string }[] {
  const sums = new Map<string, number>();
  for (const a of accounts) sums.set(a.balance.currency, (sums.get(a.balance.currency) ?? 0) + a.balance.amount_minor);
  return [...sums].map(([currency, amount_minor]) => ({ currency, amount_minor }));
}

/** The latest movements across all the client's accounts, newest first. */
function Activity({ accounts }: { accounts: AccountView[] }) {
  const ids = accounts.map((a) => a.id).join(",");
  const activity = useLoad(async () => {
    const pages = await Promise.all(accounts.map((a) => api.get<Page<TransactionView>>(`/v1/accounts/${a.id}/transactions?limit=20`)));
    return pages
      .flatMap((page) => page.items)
      .sort((x, y) => y.occurred_at.localeCompare(x.occurred_at))
      .slice(0, 20);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ids]);
  const named = (id: string) => {
    const a = accounts.find((account) => account.id === id);
    return a ? `${a.account_type} ${formatAccountNumber(a.account_number)}` : idTail(id);
  };
  return (
    <>
      <h2>Recent activity</h2>
      <ProblemBanner problem={activity.problem} />
      <Loading loading={activity.loading}>
        <Empty when={!!activity.data && activity.data.length === 0}>No activity yet.</Empty>
        {activity.data && activity.data.length > 0 && (
          <table aria-label="Recent activity">
            <thead>
              <tr>
                <th>When</th>
                <th>Account</th>
                <th>Kind</th>
                <th className="number">Amount</th>
                <th>Description</th>
              </tr>
            </thead>
            <tbody>
              {activity.data.map((t) => (
                <tr key={t.id}>
                  <td>{formatWhen(t.occurred_at)}</td>
                  <td>
                    <Link to={`/accounts/${t.account_id}`}>{named(t.account_id)}</Link>
                  </td>
                  <td>{kindWords(t.kind)}</td>
                  <td className="number">{isDebit(t.kind) ? `−${formatMoney(t.amount)}` : formatMoney(t.amount)}</td>
                  <td>{t.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </>
  );
}

type Communication = Schemas["CommunicationView"];

/** The mail sent to the client and, for their agent, a composer: draft, edit, send. */
function Mail({ client, canSend }: { client: ClientView; canSend: boolean }) {
  const sent = useLoad(() => api.get<Page<Communication>>(`/v1/clients/${client.id}/communications?limit=50`), [client.id]);
  return (
    <>
      <h2>Mail</h2>
      <ProblemBanner problem={sent.problem} />
      <Loading loading={sent.loading}>
        <Empty when={!!sent.data && sent.data.items.length === 0}>No mail sent yet.</Empty>
        {sent.data && sent.data.items.length > 0 && (
          <table aria-label="Mail sent">
            <thead>
              <tr>
                <th>Sent</th>
                <th>Subject</th>
                <th>To</th>
                <th>By</th>
              </tr>
            </thead>
            <tbody>
              {sent.data.items.map((m) => (
                <tr key={m.sequence}>
                  <td>{formatWhen(m.sent_at)}</td>
                  <td>{m.subject}</td>
                  <td>{m.recipient ?? <span className="muted">erased</span>}</td>
                  <td title={m.sent_by}>{m.sent_by_username ?? idTail(m.sent_by)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
      {canSend && (
        <Composer
          client={client}
          onSent={(count) => sent.refresh((page) => page.items.length > count, 5000)}
          count={sent.data?.items.length ?? 0}
        />
      )}
    </>
  );
}

function Composer({ client, count, onSent }: { client: ClientView; count: number; onSent: (count: number) => void }) {
  const [prompt, setPrompt, clearPrompt] = useDraft("mail-prompt", "");
  const [subject, setSubject, clearSubject] = useDraft("mail-subject", "");
  const [body, setBody, clearBody] = useDraft("mail-body", "");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [drafting, setDrafting] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const command = useCommand();
  const errors = fieldErrors(problem ?? undefined);
  const edit = (set: (value: string) => void) => (value: string) => {
    set(value);
    command.forget();
    setDone(null);
  };
  async function draft() {
    setDrafting(true);
    try {
      const answer = await api.post<{ draft: string }>("/v1/mail", { action: "generate", client_id: client.id, prompt });
      setBody(answer.draft);
      command.forget();
      setProblem(null);
      setDone("Drafted: read it and change what you like before sending.");
    } catch (error) {
      setProblem(toProblem(error));
    } finally {
      setDrafting(false);
    }
  }
  async function send(event: FormEvent) {
    event.preventDefault();
    try {
      const outcome = await command.run((key) =>
        api.post("/v1/mail", { action: "send", recipient: client.email, subject, body }, key),
      );
      if (!outcome.ran) return;
      clearPrompt();
      clearSubject();
      clearBody();
      setProblem(null);
      setDone("Sent.");
      onSent(count);
    } catch (error) {
      setProblem(toProblem(error));
    }
  }
  return (
    <form onSubmit={send} className="grid" noValidate aria-label="Write to the client">
      <h2>Write to {client.first_name}</h2>
      <ProblemBanner problem={problem} shown={["subject", "body"]} />
      {done && <p role="status">{done}</p>}
      <Field label="What should it say? (for the assistant)" name="mail-prompt" value={prompt} onChange={edit(setPrompt)} />
      <div className="actions">
        <button type="button" onClick={draft} disabled={drafting || !prompt.trim()} aria-busy={drafting}>
          {drafting ? "Drafting…" : "Draft with the assistant"}
        </button>
      </div>
      <Field label="Subject" name="mail-subject" value={subject} onChange={edit(setSubject)} error={errors.subject} />
      <Field label="Message" name="mail-body" value={body} onChange={edit(setBody)} error={errors.body} rows={8} />
      <div className="actions">
        <button type="submit" disabled={command.busy || !subject.trim() || !body.trim()} aria-busy={command.busy}>
          Send to {client.email}
        </button>
      </div>
    </form>
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
