import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, query, type AccountView, type ClientView, type Page, type PayeeView, type TransactionView } from "../api/client";
import { Confirm, CopyButton, Empty, Field, Loading, Pager, ProblemBanner, SortHeader, toProblem, useCommand, useDraft, useLoad, usePager, useRole } from "../components";
import { balanceSeries, polyline } from "../lib/chart";
import { counterpartyWords, formatAccountNumber, formatWhen, isDebit, kindWords, periodParams } from "../lib/format";
import { formatMoney, parseAmount } from "../lib/money";
import { describe, fieldErrors, type Problem } from "../lib/problems";
import { downloadCsv } from "./Statement";

export function AccountPage() {
  const { id = "" } = useParams();
  const role = useRole();
  const account = useLoad(() => api.get<AccountView>(`/v1/accounts/${id}`), [id]);
  const clientId = account.data?.client_id;
  const owner = useLoad(() => (clientId ? api.get<ClientView>(`/v1/clients/${clientId}`) : Promise.resolve(null)), [clientId]);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [exportProblem, setExportProblem] = useState<Problem | null>(null);
  const pager = usePager(50);
  const [oldestFirst, setOldestFirst] = useState(false);
  const history = useLoad(
    () =>
      api.get<Page<TransactionView>>(
        `/v1/accounts/${id}/transactions${query({
          ...periodParams(from, to),
          sort: oldestFirst ? "oldest" : undefined,
          cursor: pager.cursor,
          limit: pager.size,
        })}`,
      ),
    [id, from, to, oldestFirst, pager.cursor, pager.size],
  );
  // After a command: poll until the account shows its new version, then the history.
  const refresh = (version: number) => {
    account.refresh((a) => a.version >= version).then(() => history.refresh());
  };
  const a = account.data;
  const o = owner.data;
  return (
    <section>
      <ProblemBanner problem={account.problem} />
      <Loading loading={account.loading}>
        {a && (
          <>
            <header className="row">
              <h1>
                <span className="capitalize">{a.account_type}</span> account <span className="account-number">{formatAccountNumber(a.account_number)}</span> ·{" "}
                <span data-testid="balance">{formatMoney(a.balance)}</span>
              </h1>
              <span className={`status ${a.status}`}>{a.status}</span>
            </header>
            <dl className="details">
              <dt>Owner</dt>
              <dd>{o ? <Link to={`/clients/${o.id}`}>{`${o.first_name ?? ""} ${o.last_name ?? ""}`.trim() || "the client"}</Link> : <Link to={`/clients/${a.client_id}`}>the client</Link>}</dd>
              <dt>Account number</dt>
              <dd>
                <code data-testid="account-number">{formatAccountNumber(a.account_number)}</code>{" "}
                <CopyButton text={formatAccountNumber(a.account_number)} label="Copy the account number" />
              </dd>
              <dt>Account id</dt>
              <dd>
                <code>{a.id}</code> <CopyButton text={a.id} label="Copy the account id" />
              </dd>
              <dt>Opened</dt>
              <dd>{formatWhen(a.opened_at)}</dd>
            </dl>
            {role === "agent" && a.status !== "closed" && <Movements account={a} owner={o} onDone={refresh} />}
          </>
        )}
      </Loading>
      <h2>Transactions</h2>
      <form className="row" aria-label="Date filter" onSubmit={(e) => e.preventDefault()}>
        <Field label="From" name="from" type="date" value={from} onChange={(v) => { pager.reset(); setFrom(v); }} />
        <Field label="To" name="to" type="date" value={to} onChange={(v) => { pager.reset(); setTo(v); }} />
        <span className="actions">
          <button type="button" onClick={() => downloadCsv(id, from, to).catch((e) => setExportProblem(toProblem(e)))}>
            Download CSV
          </button>
          <Link className="button" to={`/accounts/${id}/statement${query({ from, to })}`}>
            Printable statement
          </Link>
        </span>
      </form>
      <ProblemBanner problem={exportProblem} />
      <ProblemBanner problem={history.problem} />
      <Loading loading={history.loading}>
        {a && history.data && history.data.items.length > 1 && <BalanceChart rows={history.data.items} currency={a.currency} />}
        <Empty when={!!history.data && history.data.items.length === 0}>No transactions in this period.</Empty>
        {history.data && history.data.items.length > 0 && (
          <table>
            <thead>
              <tr>
                <SortHeader
                  label="When"
                  direction={oldestFirst ? "ascending" : "descending"}
                  onSort={() => {
                    pager.reset();
                    setOldestFirst(!oldestFirst);
                  }}
                />
                <th>Kind</th>
                <th>Counterparty</th>
                <th className="number">Debit</th>
                <th className="number">Credit</th>
                <th className="number">Balance after</th>
                <th>Description</th>
              </tr>
            </thead>
            <tbody>
              {history.data.items.map((t) => (
                <tr key={t.id}>
                  <td>{formatWhen(t.occurred_at)}</td>
                  <td>{kindWords(t.kind)}</td>
                  <td>
                    {t.counterparty_account_id ? (
                      <Link to={`/accounts/${t.counterparty_account_id}`}>
                        {t.kind === "transfer_in" ? "from" : "to"}{" "}
                        {counterpartyWords(t)}
                      </Link>
                    ) : (
                      ""
                    )}
                  </td>
                  <td className="number">{isDebit(t.kind) ? `−${formatMoney(t.amount)}` : ""}</td>
                  <td className="number">{isDebit(t.kind) ? "" : formatMoney(t.amount)}</td>
                  <td className="number">{formatMoney(t.balance_after)}</td>
                  <td>{t.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager pager={pager} nextCursor={history.data?.next_cursor} list={history.data} noun={["transaction", "transactions"]} />
      </Loading>
    </section>
  );
}

/** The balance over the rows shown: axes with values and dates, each point titled. */
function BalanceChart({ rows, currency }: { rows: TransactionView[]; currency: string }) {
  const series = balanceSeries(rows);
  const [width, height, left, bottom] = [600, 160, 90, 28];
  const plot = { w: width - left - 10, h: height - bottom - 10 };
  const top = Math.max(...series.map((p) => p.balance), 0);
  const money = (minor: number) => formatMoney({ amount_minor: minor, currency });
  const points = polyline(series, plot.w, plot.h)
    .split(" ")
    .filter(Boolean)
    .map((pair) => pair.split(",").map(Number));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Balance over time, from ${money(series[0].balance)} to ${money(series[series.length - 1].balance)}`}>
        <g transform={`translate(${left},10)`}>
          <line x1={0} y1={plot.h} x2={plot.w} y2={plot.h} className="axis" />
          <line x1={0} y1={0} x2={0} y2={plot.h} className="axis" />
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={0} y1={plot.h - f * plot.h} x2={plot.w} y2={plot.h - f * plot.h} className="grid-line" />
              <text x={-6} y={plot.h - f * plot.h + 4} textAnchor="end" className="tick">
                {money(Math.round(top * f))}
              </text>
            </g>
          ))}
          <text x={0} y={plot.h + 18} className="tick">
            {formatWhen(new Date(series[0].time).toISOString())}
          </text>
          <text x={plot.w} y={plot.h + 18} textAnchor="end" className="tick">
            {formatWhen(new Date(series[series.length - 1].time).toISOString())}
          </text>
          <polyline points={points.map((p) => p.join(",")).join(" ")} fill="none" stroke="currentColor" strokeWidth="2" />
          {points.map(([x, y], i) => (
            <circle key={i} cx={x} cy={y} r={3} fill="currentColor">
              <title>
                {formatWhen(new Date(series[i].time).toISOString())}: {money(series[i].balance)}
              </title>
            </circle>
          ))}
        </g>
      </svg>
      <figcaption>Balance after each transaction shown</figcaption>
    </figure>
  );
}

type Pending = { kind: "transfer" } | { kind: "freeze" } | { kind: "close" };

/** The agent's controls: deposit, withdraw, transfer, freeze, close. */
function Movements({ account, owner, onDone }: { account: AccountView; owner: ClientView | null; onDone: (version: number) => void }) {
  const command = useCommand();
  const siblings = useLoad(() => api.get<Page<AccountView>>(`/v1/clients/${account.client_id}/accounts?limit=200`), [account.client_id]);
  const [amount, setAmount, clearAmount] = useDraft("amount", "");
  const [description, setDescription, clearDescription] = useDraft("description", "");
  const [target, setTarget, clearTarget] = useDraft("target", "");
  const [otherNumber, setOtherNumber, clearOtherNumber] = useDraft("other-account-number", "");
  const [reference, setReference, clearReference] = useDraft("reference", "");
  // The account behind the number typed, as the payee lookup named it.
  const [payee, setPayee] = useState<PayeeView | null>(null);
  const [reason, setReason] = useState("");
  const [pending, setPending] = useState<Pending | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [amountError, setAmountError] = useState<string | undefined>();
  const [targetError, setTargetError] = useState<string | undefined>();
  const [done, setDone] = useState<string | null>(null);
  const errors = fieldErrors(problem ?? undefined);
  // Any change of what would be sent is a new intent (a new Idempotency-Key).
  const edit = (set: (value: string) => void) => (value: string) => {
    set(value);
    command.forget();
    setDone(null);
    setPayee(null);
  };
  const destinations = (siblings.data?.items ?? []).filter((s) => s.id !== account.id && s.status === "open");
  const ownerName = owner ? `${owner.first_name ?? ""} ${owner.last_name ?? ""}`.trim() : "the client";
  const own = destinations.find((d) => d.id === target);
  const destination = target === "other" ? payee?.account_id : own?.id;
  const destinationWords = () =>
    own
      ? `${ownerName}'s ${own.account_type} account ${formatAccountNumber(own.account_number)}`
      : payee
        ? `${payee.name ?? "a client whose name was erased"}, account ${formatAccountNumber(payee.account_number)}`
        : "";

  function money() {
    const parsed = parseAmount(amount, account.currency);
    if (!parsed.ok) {
      setAmountError(parsed.error);
      return null;
    }
    setAmountError(undefined);
    return { amount_minor: parsed.minor, currency: account.currency };
  }

  async function run(label: string, send: (key: string) => Promise<{ version?: number } | null>, version?: number) {
    try {
      const outcome = await command.run(send);
      if (!outcome.ran) return;
      setProblem(null);
      setDone(label);
      clearAmount();
      clearDescription();
      clearTarget();
      clearOtherNumber();
      clearReference();
      setPayee(null);
      setReason("");
      setPending(null);
      onDone(version ?? outcome.value?.version ?? account.version + 1);
    } catch (failure) {
      setDone(null);
      setProblem(toProblem(failure));
      setPending(null);
    }
  }

  const move = (kind: "deposits" | "withdrawals") => {
    const value = money();
    if (value) {
      run(kind === "deposits" ? "Deposited." : "Withdrawn.", (key) =>
        api.post(`/v1/accounts/${account.id}/${kind}`, { amount: value, description: description.trim() || undefined }, key),
      );
    }
  };

  /** The account behind the number typed, or why there is none to pay. */
  async function findPayee(): Promise<PayeeView | null> {
    if (!otherNumber.trim()) {
      setTargetError("Type the account number to transfer to");
      return null;
    }
    try {
      const found = await api.get<PayeeView>(`/v1/payees/${encodeURIComponent(otherNumber.trim())}`);
      const refusal =
        found.account_id === account.id
          ? "That is this account"
          : found.currency !== account.currency
            ? `That account holds ${found.currency}; this one holds ${account.currency}`
            : found.status !== "open"
              ? `That account is ${found.status} and takes no transfers`
              : undefined;
      setTargetError(refusal);
      return refusal ? null : found;
    } catch (failure) {
      const p = toProblem(failure);
      const atField = fieldErrors(p).number;
      setTargetError(p.status === 404 ? "No account has this number" : describe(atField ? { ...p, detail: atField } : p));
      return null;
    }
  }

  async function askTransfer() {
    const value = money();
    let chosen = !!own;
    if (target === "other") {
      const found = await findPayee();
      setPayee(found);
      chosen = !!found;
    } else if (!own) {
      setTargetError("Choose the account to transfer to");
    } else {
      setTargetError(undefined);
    }
    if (value && chosen) setPending({ kind: "transfer" });
  }

  const busy = command.busy;
  return (
    <div className="panel">
      <ProblemBanner problem={problem} shown={["amount", "amount.amount_minor", "to_account_id", "reference"]} />
      {done && <p role="status">{done}</p>}
      {account.status === "open" && (
        <>
          {/* No implicit submission: Enter in a field never moves money. */}
          <form className="grid" noValidate onSubmit={(e) => e.preventDefault()} aria-label="Deposit or withdraw">
            <h2>Deposit or withdraw</h2>
            <Field
              label={`Amount (${account.currency})`}
              name="amount"
              value={amount}
              onChange={edit(setAmount)}
              error={amountError ?? errors.amount ?? errors["amount.amount_minor"]}
            />
            <Field label="Description" name="description" value={description} onChange={edit(setDescription)} />
            <div className="actions">
              <button type="button" onClick={() => move("deposits")} disabled={busy} aria-busy={busy}>
                Deposit
              </button>
              <button type="button" onClick={() => move("withdrawals")} disabled={busy} aria-busy={busy}>
                Withdraw
              </button>
            </div>
          </form>
          <form className="grid" noValidate onSubmit={(e) => e.preventDefault()} aria-label="Transfer">
            <h2>Transfer the amount above</h2>
            <Field
              label="To account"
              name="target"
              value={target}
              onChange={edit(setTarget)}
              error={target === "other" ? undefined : (targetError ?? errors.to_account_id)}
              options={["", ...destinations.map((d) => d.id), "other"]}
              optionLabel={(value) =>
                value === "" ? "Choose…" : value === "other" ? "By account number…" : labelOf(destinations.find((d) => d.id === value))
              }
            />
            {target === "other" && (
              <Field
                label="Account number"
                name="other-account-number"
                value={otherNumber}
                onChange={edit(setOtherNumber)}
                hint="LL and 14 digits, as on the payee's statement; spaces are fine"
                error={targetError ?? errors.to_account_id}
              />
            )}
            <Field label="Reference (optional)" name="reference" value={reference} onChange={edit(setReference)} error={errors.reference} hint="Up to 140 characters; the payee sees it" />
            <div className="actions">
              {pending?.kind === "transfer" ? (
                <Confirm
                  label="Confirm transfer"
                  confirm="Confirm transfer"
                  busy={busy}
                  onCancel={() => setPending(null)}
                  onConfirm={() => {
                    const value = money();
                    if (value) {
                      run(
                        "Transferred.",
                        (key) =>
                          api.post(
                            `/v1/transfers`,
                            { from_account_id: account.id, to_account_id: destination, amount: value, reference: reference.trim() || undefined },
                            key,
                          ),
                        account.version + 1,
                      );
                    }
                  }}
                >
                  Transfer {amountWords(amount, account.currency)} from this {account.account_type} account to{" "}
                  <strong data-testid="payee">{destinationWords()}</strong>?
                  {reference.trim() && <> Reference: “{reference.trim()}”.</>}
                </Confirm>
              ) : (
                <button type="button" onClick={askTransfer} disabled={busy}>
                  Transfer…
                </button>
              )}
            </div>
          </form>
        </>
      )}
      <div className="actions">
        {pending?.kind === "freeze" ? (
          <Confirm
            label="Confirm freeze"
            confirm="Freeze the account"
            busy={busy}
            reason={{ value: reason, onChange: setReason }}
            onCancel={() => setPending(null)}
            onConfirm={() => run("Frozen.", (key) => api.post(`/v1/accounts/${account.id}/freeze`, { reason: reason.trim() || undefined }, key))}
          >
            Freeze this account? No money moves in or out until it is unfrozen.
          </Confirm>
        ) : pending?.kind === "close" ? (
          <Confirm
            label="Confirm closing"
            confirm="Close the account"
            busy={busy}
            onCancel={() => setPending(null)}
            onConfirm={() => run("Closed.", (key) => api.post(`/v1/accounts/${account.id}/close`, undefined, key))}
          >
            Close this account for good? It must hold no money.
          </Confirm>
        ) : (
          <>
            {account.status === "open" && (
              <button type="button" onClick={() => setPending({ kind: "freeze" })} disabled={busy}>
                Freeze…
              </button>
            )}
            {account.status === "frozen" && (
              <button type="button" onClick={() => run("Unfrozen.", (key) => api.post(`/v1/accounts/${account.id}/unfreeze`, undefined, key))} disabled={busy}>
                Unfreeze
              </button>
            )}
            <button type="button" className="danger" onClick={() => setPending({ kind: "close" })} disabled={busy}>
              Close account…
            </button>
          </>
        )}
      </div>
    </div>
  );
}

/** The typed amount as money (or as typed, when it does not parse), without side effects. */
function amountWords(amount: string, currency: string): string {
  const parsed = parseAmount(amount, currency);
  return parsed.ok ? formatMoney({ amount_minor: parsed.minor, currency }) : `${amount} ${currency}`;
}

function labelOf(account: AccountView | undefined): string {
  return account ? `${account.account_type} ${formatAccountNumber(account.account_number)} · ${formatMoney(account.balance)}` : "";
}
