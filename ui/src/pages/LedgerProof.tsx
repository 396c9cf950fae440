// The auditor's own check of the ledger: a digest and a public key they hold (kept in
// this browser, loaded from files or taken from the server once and compared with what
// the bank gave them), the digest's signature checked here, and each event's inclusion
// proof checked here against that digest's root (docs/audit.md).

import { useEffect, useState, type ChangeEvent } from "react";
import { api } from "../api/client";
import { ProblemBanner, toProblem } from "../components";
import { formatWhen } from "../lib/format";
import { parseDigest, verifyDigest, verifyInclusion, type Digest, type InclusionProof } from "../lib/ledgerProof";
import type { Problem } from "../lib/problems";

const DIGEST = "ledgerline.heldDigest";
const KEY = "ledgerline.heldPublicKey";

export type Held = { digest: Digest | null; publicKey: string | null };

/** What the auditor holds, kept in this browser across visits. */
export function useHeld(): [Held, (held: Held) => void] {
  const [held, setHeld] = useState<Held>(() => ({
    digest: parseDigest(localStorage.getItem(DIGEST) ?? ""),
    publicKey: localStorage.getItem(KEY),
  }));
  function keep(next: Held) {
    if (next.digest) localStorage.setItem(DIGEST, JSON.stringify(next.digest));
    else localStorage.removeItem(DIGEST);
    if (next.publicKey) localStorage.setItem(KEY, next.publicKey);
    else localStorage.removeItem(KEY);
    setHeld(next);
  }
  return [held, keep];
}

type DigestKey = { key_id: string; public_key_pem: string; current: boolean };

async function readFile(event: ChangeEvent<HTMLInputElement>): Promise<string | null> {
  const file = event.target.files?.[0];
  event.target.value = "";
  return file ? file.text() : null;
}

/** The digest and key held, the signature's check, and ways to take new ones. */
export function HeldDigestPanel({ held, onChange }: { held: Held; onChange: (held: Held) => void }) {
  const [problem, setProblem] = useState<Problem | null>(null);
  const [signature, setSignature] = useState<"checking" | "valid" | "invalid" | null>(null);
  const [busy, setBusy] = useState(false);
  const { digest, publicKey } = held;

  useEffect(() => {
    let gone = false;
    if (!digest || !publicKey) {
      setSignature(null);
      return;
    }
    setSignature("checking");
    verifyDigest(digest, publicKey).then((ok) => !gone && setSignature(ok ? "valid" : "invalid"));
    return () => {
      gone = true;
    };
  }, [digest, publicKey]);

  async function run(step: () => Promise<void>) {
    setBusy(true);
    try {
      await step();
      setProblem(null);
    } catch (error) {
      setProblem(toProblem(error));
    } finally {
      setBusy(false);
    }
  }
  const takeLatest = () => run(async () => onChange({ ...held, digest: await api.get<Digest>("/v1/audit/digests/latest") }));
  const signNow = () => run(async () => onChange({ ...held, digest: await api.post<Digest>("/v1/audit/digests") }));
  const takeKey = () =>
    run(async () => {
      const keys = await api.get<DigestKey[]>("/v1/audit/digest-keys");
      const wanted = keys.find((k) => k.key_id === digest?.key_id) ?? keys.find((k) => k.current);
      onChange({ ...held, publicKey: wanted?.public_key_pem ?? null });
    });
  async function loadDigest(event: ChangeEvent<HTMLInputElement>) {
    const text = await readFile(event);
    if (text === null) return;
    const parsed = parseDigest(text);
    if (parsed) onChange({ ...held, digest: parsed });
    else setProblem({ type: "/problems/bad-file", title: "Not a digest", status: 0, detail: "That file holds no Ledgerline digest (one JSON object per line)." });
  }
  async function loadKey(event: ChangeEvent<HTMLInputElement>) {
    const text = await readFile(event);
    if (text !== null) onChange({ ...held, publicKey: text });
  }

  return (
    <section aria-label="Digest you hold" className="held">
      <h2>Digest you hold</h2>
      {digest ? (
        <dl className="fields" aria-label="Held digest">
          <dt>Digest</dt>
          <dd>
            #{digest.sequence}, over {digest.tree_size.toLocaleString()} events, signed {formatWhen(digest.issued_at)}
          </dd>
          <dt>Root</dt>
          <dd>
            <code title={digest.root_hash}>{digest.root_hash.slice(0, 24)}…</code>
          </dd>
          <dt>Key</dt>
          <dd>
            <code>{digest.key_id}</code>
          </dd>
        </dl>
      ) : (
        <p className="muted">No digest held yet. Keep the latest, or load one you were given, to check events against it.</p>
      )}
      {signature && (
        <p role="status" className={`banner ${signature === "valid" ? "ok" : signature === "invalid" ? "error" : ""}`}>
          {signature === "valid" && "Signature valid: checked in this browser with the public key you hold."}
          {signature === "invalid" && "The signature does not verify with the public key you hold: this digest is not to be trusted."}
          {signature === "checking" && "Checking the signature…"}
        </p>
      )}
      {digest && !publicKey && <p className="muted">Hold the bank's public key to check the digest's signature.</p>}
      <div className="row">
        <button type="button" onClick={takeLatest} disabled={busy}>
          Keep the latest digest
        </button>
        <button type="button" onClick={signNow} disabled={busy}>
          Sign a digest now
        </button>
        <label className="file">
          Load a digest file
          <input type="file" accept=".json,.jsonl,application/json" onChange={loadDigest} />
        </label>
        <button type="button" onClick={takeKey} disabled={busy}>
          Take the server's public key
        </button>
        <label className="file">
          Load a public key
          <input type="file" accept=".pem" onChange={loadKey} />
        </label>
      </div>
      {publicKey && <p className="muted">Compare the key with the one the bank gave you: a key taken from the server proves only what the server says.</p>}
      <ProblemBanner problem={problem} />
    </section>
  );
}

type Outcome = { ok: boolean; text: string };

/** Proves one event is in the held digest's tree, checking the proof in this browser. */
export function ProveButton({ held, type, id, sequence, hash }: { held: Held; type: string; id: string; sequence: number; hash: string | undefined }) {
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const digest = held.digest;
  if (!digest) return null;
  async function prove() {
    if (!digest) return;
    try {
      // A digest whose signature is not checked proves nothing.
      if (!held.publicKey) {
        setOutcome({ ok: false, text: "Hold the bank's public key (on the Integrity page) first: the digest's signature must be checked." });
        return;
      }
      if (!(await verifyDigest(digest, held.publicKey))) {
        setOutcome({ ok: false, text: "The digest you hold does not verify with the public key you hold: no proof against it counts." });
        return;
      }
      const proof = await api.get<InclusionProof>(`/v1/audit/proofs/inclusion?aggregate_type=${type}&id=${encodeURIComponent(id)}&sequence=${sequence}&tree_size=${digest.tree_size}`);
      const included = await verifyInclusion(digest.root_hash, digest.tree_size, proof.leaf_index, proof.leaf_value, proof.proof);
      // The leaf commits to the hash computed over the event as stored and to the hash it
      // carries: both must be the hash this event shows.
      const same = hash !== undefined && proof.leaf_value.slice(64) === hash && proof.leaf_value.slice(0, 64) === hash;
      setOutcome(
        included && same
          ? { ok: true, text: `In digest #${digest.sequence}: the proof leads to its root (checked in this browser), place ${proof.leaf_index.toLocaleString()}.` }
          : included
            ? { ok: false, text: "The proof holds for another event than the one shown here: it was altered." }
            : { ok: false, text: `Not in digest #${digest.sequence}'s tree: the proof does not lead to its root.` },
      );
      setProblem(null);
    } catch (error) {
      setOutcome(null);
      setProblem(toProblem(error));
    }
  }
  return (
    <>
      <button type="button" className="link" onClick={prove} aria-label={`Prove event ${sequence}`}>
        Prove
      </button>
      {outcome && (
        <span role="status" className={`proof ${outcome.ok ? "ok" : "error"}`}>
          {outcome.ok ? "✓ " : "✗ "}
          {outcome.text}
        </span>
      )}
      <ProblemBanner problem={problem} />
    </>
  );
}
