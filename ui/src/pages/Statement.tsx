// A period of an account's history: as a CSV file, and as a statement to print.

import { useSearchParams, useParams, Link } from "react-router-dom";
import { allPages, api, type AccountView, type ClientView, type TransactionView } from "../api/client";
import { Loading, ProblemBanner, saveFile, useLoad } from "../components";
import { counterpartyWords, formatAccountNumber, formatDay, formatWhen, isDebit, kindWords, periodParams } from "../lib/format";
import { formatMoney } from "../lib/money";
import { summarize, toCsv } from "../lib/statement";

/** Every transaction of the period. */
export function allTransactions(accountId: string, from: string, to: string): Promise<TransactionView[]> {
  return allPages<TransactionView>(`/v1/accounts/${accountId}/transactions`, periodParams(from, to));
}

/** Saves the period as `statement-<account>-<from>-<to>.csv`. */
export async function downloadCsv(accountId: string, from: string, to: string): Promise<void> {
  const rows = await allTransactions(accountId, from, to);
  saveFile(`statement-${accountId}-${from || "start"}-${to || "today"}.csv`, toCsv(rows), "text/csv;charset=utf-8");
}

export function StatementPage() {
  const { id = "" } = useParams();
  const [params] = useSearchParams();
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const data = useLoad(async () => {
    const account = await api.get<AccountView>(`/v1/accounts/${id}`);
    const [owner, rows] = await Promise.all([api.get<ClientView>(`/v1/clients/${account.client_id}`), allTransactions(id, from, to)]);
    return { account, owner, rows };
  }, [id, from, to]);
  const d = data.data;
  const summary = d ? summarize(d.rows) : null;
  const money = (minor: number) => formatMoney({ amount_minor: minor, currency: d?.account.currency ?? "EUR" });
  return (
    <section className="statement">
      <ProblemBanner problem={data.problem} />
      <Loading loading={data.loading}>
        {d && (
          <>
            <header className="row">
              <h1>Account statement</h1>
              <span className="actions no-print">
                <Link to={`/accounts/${id}`}>Back to the account</Link>
                <button type="button" onClick={() => window.print()}>
                  Print
                </button>
              </span>
            </header>
            <dl className="details">
              <dt>Bank</dt>
              <dd>Ledgerline</dd>
              <dt>Account holder</dt>
              <dd>
                {d.owner.first_name} {d.owner.last_name}
              </dd>
              <dt>Account</dt>
              <dd>
                <span className="capitalize">{d.account.account_type}</span> account <strong>{formatAccountNumber(d.account.account_number)}</strong> · {d.account.currency}
              </dd>
              <dt>Period</dt>
              <dd>
                {from ? formatDay(from) : "opening"} – {to ? formatDay(to) : formatDay(new Date().toISOString())}
              </dd>
              <dt>Opening balance</dt>
              <dd data-testid="opening">{summary ? money(summary.opening) : "—"}</dd>
              <dt>Money in</dt>
              <dd data-testid="credits">{summary ? money(summary.credits) : money(0)}</dd>
              <dt>Money out</dt>
              <dd data-testid="debits">{summary ? money(summary.debits) : money(0)}</dd>
              <dt>Closing balance</dt>
              <dd data-testid="closing">{summary ? money(summary.closing) : "—"}</dd>
              <dt>Produced</dt>
              <dd>{formatWhen(new Date().toISOString())}</dd>
            </dl>
            {d.rows.length === 0 ? (
              <p className="muted">No transactions in this period.</p>
            ) : (
              <table aria-label="Statement lines">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Kind</th>
                    <th>Counterparty</th>
                    <th>Description</th>
                    <th className="number">Debit</th>
                    <th className="number">Credit</th>
                    <th className="number">Balance</th>
                  </tr>
                </thead>
                <tbody>
                  {[...d.rows].reverse().map((t) => (
                    <tr key={t.id}>
                      <td>{formatWhen(t.occurred_at)}</td>
                      <td>{kindWords(t.kind)}</td>
                      <td>{counterpartyWords(t)}</td>
                      <td>{t.description ?? ""}</td>
                      <td className="number">{isDebit(t.kind) ? `−${formatMoney(t.amount)}` : ""}</td>
                      <td className="number">{isDebit(t.kind) ? "" : formatMoney(t.amount)}</td>
                      <td className="number">{formatMoney(t.balance_after)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Loading>
    </section>
  );
}
