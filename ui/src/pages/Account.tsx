import { useState, type FormEvent } from "react";
import { useParams } from "react-router-dom";
import { api, query, type AccountView, type Page, type TransactionView } from "../api/client";
import { Empty, Field, Loading, Pager, ProblemBanner, toProblem, useLoad, usePager } from "../components";
import { balanceSeries, polyline } from "../lib/chart";
import { formatMoney, parseAmount } from "../lib/money";
import { type Problem } from "../lib/problems";

export function AccountPage() {
  const { id = "" } = useParams();
  const account = useLoad(() => api.get<AccountView>(`/v1/accounts/${id}`), [id]);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const pager = usePager();
  const history = useLoad(
    () =>
      api.get<Page<TransactionView>>(
        `/v1/accounts/${id}/transactions${query({
          from: from ? new Date(from).toISOString() : undefined,
          to: to ? new Date(`${to}T23:59:59.999`).toISOString() : undefined,
          cursor: pager.cursor,
          limit: 50,
        })}`,
      ),
    [id, from, to, pager.cursor],
  );
  // After a command: poll until the account shows its new version, then the history.
  const refresh = (version: number) => {
    account.refresh((a) => a.version >= version).then(() => history.refresh());
  };
  const a = account.data;
  return (
    <section>
      <ProblemBanner problem={account.problem} />
      <Loading loading={account.loading}>
        {a && (
          <>
            <header className="row">
              <h1>
                <span className="capitalize">{a.account_type}</span> account · <span data-testid="balance">{formatMoney(a.balance)}</span>
              </h1>
              <span className={`status ${a.status}`}>{a.status}</span>
            </header>
            {a.status !== "closed" && <Movements account={a} onDone={refresh} />}
          </>
        )}
      </Loading>
      <h2>Transactions</h2>
      <form className="row" aria-label="Date filter" onSubmit={(e) => e.preventDefault()}>
        <Field label="From" name="from" type="date" value={from} onChange={(v) => { pager.reset(); setFrom(v); }} />
        <Field label="To" name="to" type="date" value={to} onChange={(v) => { pager.reset(); setTo(v); }} />
      </form>
      <ProblemBanner problem={history.problem} />
      <Loading loading={history.loading}>
        {history.data && history.data.items.length > 1 && <BalanceChart rows={history.data.items} />}
        <Empty when={!!history.data && history.data.items.length === 0}>No transactions in this period.</Empty>
        {history.data && history.data.items.length > 0 && (
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Kind</th>
                <th>Amount</th>
                <th>Balance after</th>
                <th>Description</th>
              </tr>
            </thead>
            <tbody>
              {history.data.items.map((t) => (
                <tr key={t.id}>
                  <td>{t.occurred_at.replace("T", " ").slice(0, 19)}</td>
                  <td>{t.kind.replace(/_/g, " ")}</td>
                  <td className="number">{formatMoney(t.amount)}</td>
                  <td className="number">{formatMoney(t.balance_after)}</td>
                  <td>{t.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager pager={pager} nextCursor={history.data?.next_cursor} />
      </Loading>
    </section>
  );
}

function BalanceChart({ rows }: { rows: TransactionView[] }) {
  const series = balanceSeries(rows);
  return (
    <figure className="chart">
      <svg viewBox="0 0 400 120" role="img" aria-label="Balance over time" preserveAspectRatio="none">
        <polyline points={polyline(series, 400, 110)} fill="none" stroke="currentColor" strokeWidth="2" />
      </svg>
      <figcaption>Balance over the transactions shown</figcaption>
    </figure>
  );
}

function Movements({ account, onDone }: { account: AccountView; onDone: (version: number) => void }) {
  const [amount, setAmount] = useState("");
  const [description, setDescription] = useState("");
  const [target, setTarget] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [error, setError] = useState<string | undefined>();
  const [done, setDone] = useState<string | null>(null);

  function money() {
    const parsed = parseAmount(amount, account.currency);
    if (!parsed.ok) {
      setError(parsed.error);
      return null;
    }
    setError(undefined);
    return { amount_minor: parsed.minor, currency: account.currency };
  }

  async function run(label: string, action: () => Promise<unknown>) {
    try {
      const answer = (await action()) as { version?: number } | null;
      setProblem(null);
      setDone(label);
      setAmount("");
      setConfirming(false);
      // A transfer answers with its own version: wait for any change to the account.
      onDone(label === "Transferred." ? account.version + 1 : (answer?.version ?? account.version + 1));
    } catch (failure) {
      setDone(null);
      setProblem(toProblem(failure));
      setConfirming(false);
    }
  }

  const move = (kind: "deposits" | "withdrawals") => (event: FormEvent) => {
    event.preventDefault();
    const value = money();
    if (value) run(kind === "deposits" ? "Deposited." : "Withdrawn.", () => api.post(`/v1/accounts/${account.id}/${kind}`, { amount: value, description: description || undefined }));
  };

  function transfer() {
    const value = money();
    if (value) run("Transferred.", () => api.post(`/v1/transfers`, { from_account_id: account.id, to_account_id: target.trim(), amount: value }));
  }

  return (
    <div className="panel">
      <ProblemBanner problem={problem} />
      {done && <p role="status">{done}</p>}
      {account.status === "open" && (
        <>
          <form className="grid" noValidate onSubmit={move("deposits")} aria-label="Deposit or withdraw">
            <h3>Deposit or withdraw</h3>
            <Field label={`Amount (${account.currency})`} name="amount" value={amount} onChange={setAmount} error={error} />
            <Field label="Description" name="description" value={description} onChange={setDescription} />
            <div className="actions">
              <button type="submit">Deposit</button>
              <button type="button" onClick={move("withdrawals")}>
                Withdraw
              </button>
            </div>
          </form>
          <form className="grid" noValidate onSubmit={(e) => e.preventDefault()} aria-label="Transfer">
            <h3>Transfer the amount above</h3>
            <Field label="Transfer to account id" name="target" value={target} onChange={setTarget} />
            <div className="actions">
              {!confirming ? (
                <button type="button" onClick={() => money() && target.trim() && setConfirming(true)}>
                  Transfer…
                </button>
              ) : (
                <div role="dialog" aria-label="Confirm transfer" className="confirm">
                  <p>
                    Transfer {amount} {account.currency} to {target}?
                  </p>
                  <button type="button" onClick={transfer}>
                    Confirm transfer
                  </button>
                  <button type="button" onClick={() => setConfirming(false)}>
                    Cancel
                  </button>
                </div>
              )}
            </div>
          </form>
        </>
      )}
      <div className="actions">
        {account.status === "open" && (
          <button type="button" onClick={() => run("Frozen.", () => api.post(`/v1/accounts/${account.id}/freeze`))}>
            Freeze
          </button>
        )}
        {account.status === "frozen" && (
          <button type="button" onClick={() => run("Unfrozen.", () => api.post(`/v1/accounts/${account.id}/unfreeze`))}>
            Unfreeze
          </button>
        )}
        <button
          type="button"
          className="danger"
          onClick={() => window.confirm("Close this account? It must hold no money.") && run("Closed.", () => api.post(`/v1/accounts/${account.id}/close`))}
        >
          Close account
        </button>
      </div>
    </div>
  );
}
