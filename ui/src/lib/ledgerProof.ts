// Checking the ledger's proofs in the browser, with Web Crypto only: an event's
// inclusion proof against the root of a digest the auditor holds (RFC 9162 §2.1.3.2),
// and the digest's signature (Ed25519, or ECDSA P-256 with SHA-256 from a KMS key in AWS)
// against a public key they hold (docs/audit.md).
// Nothing here trusts the server: it recomputes.

export type Digest = {
  format: string;
  sequence: number;
  tree_size: number;
  root_hash: string;
  issued_at: string;
  key_id: string;
  previous: string;
  signature: string;
};

export type InclusionProof = {
  leaf_index: number;
  tree_size: number;
  leaf_value: string;
  proof: string[];
};

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error("not hex");
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

/** RFC 6962's leaf hash of a leaf value (hex). */
export async function leafHash(leafValueHex: string): Promise<string> {
  return toHex(await sha256(new Uint8Array([0]), fromHex(leafValueHex)));
}

/**
 * Whether `proof` leads from the leaf value to `rootHex` for leaf `index` in a tree of
 * `size` leaves (RFC 9162 §2.1.3.2).
 */
export async function verifyInclusion(rootHex: string, size: number, index: number, leafValueHex: string, proof: string[]): Promise<boolean> {
  try {
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
    let fn = BigInt(index);
    let sn = BigInt(size - 1);
    let r = await sha256(new Uint8Array([0]), fromHex(leafValueHex));
    for (const hex of proof) {
      const p = fromHex(hex);
      if (p.length !== 32 || sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(new Uint8Array([1]), p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await sha256(new Uint8Array([1]), r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n && toHex(r) === rootHex.toLowerCase();
  } catch {
    return false;
  }
}

/** The seven lines a digest's signature covers. */
export function signedLines(d: Digest): string {
  return `ledgerline-digest-v1\nsequence ${d.sequence}\ntree_size ${d.tree_size}\nroot_hash ${d.root_hash}\nissued_at ${d.issued_at}\nkey_id ${d.key_id}\nprevious ${d.previous}\n`;
}

/** The DER bytes of a public key's PEM (SubjectPublicKeyInfo). */
function spki(pem: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/** The two kinds of key digests are signed with: how Web Crypto imports and verifies each. */
const KINDS: { importAs: AlgorithmIdentifier | EcKeyImportParams; verifyAs: AlgorithmIdentifier | EcdsaParams }[] = [
  { importAs: { name: "Ed25519" }, verifyAs: { name: "Ed25519" } },
  // Signatures are r ‖ s (64 bytes), which is what Web Crypto takes.
  { importAs: { name: "ECDSA", namedCurve: "P-256" }, verifyAs: { name: "ECDSA", hash: "SHA-256" } },
];

/** The key in `publicKeyPem`, of whichever kind it is. */
async function importKey(publicKeyPem: string): Promise<{ key: CryptoKey; verifyAs: AlgorithmIdentifier | EcdsaParams }> {
  const der = spki(publicKeyPem);
  for (const { importAs, verifyAs } of KINDS) {
    try {
      return { key: await crypto.subtle.importKey("spki", der, importAs, true, ["verify"]), verifyAs };
    } catch {
      // Not this kind: try the next.
    }
  }
  throw new Error("neither an Ed25519 nor a P-256 public key");
}

/**
 * The key id docs/audit.md defines: the first 16 hex digits of SHA-256 of the raw key
 * (Ed25519's 32 bytes, P-256's uncompressed point).
 */
export async function keyId(publicKeyPem: string): Promise<string> {
  const { key } = await importKey(publicKeyPem);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
  return toHex(await sha256(raw)).slice(0, 16);
}

/** Whether the digest is signed by the key in `publicKeyPem`, and names it. */
export async function verifyDigest(d: Digest, publicKeyPem: string): Promise<boolean> {
  try {
    if (d.format !== "ledgerline-digest-v1" || (await keyId(publicKeyPem)) !== d.key_id) return false;
    const { key, verifyAs } = await importKey(publicKeyPem);
    const signature = Uint8Array.from(atob(d.signature), (c) => c.charCodeAt(0));
    return await crypto.subtle.verify(verifyAs, key, signature, new TextEncoder().encode(signedLines(d)));
  } catch {
    return false;
  }
}

/** A digest read from what an auditor pasted or loaded; null if it is not one. */
export function parseDigest(text: string): Digest | null {
  try {
    const d = JSON.parse(text.trim().split("\n").pop() ?? "");
    const fields: (keyof Digest)[] = ["format", "sequence", "tree_size", "root_hash", "issued_at", "key_id", "previous", "signature"];
    return fields.every((f) => d && d[f] !== undefined) ? (d as Digest) : null;
  } catch {
    return null;
  }
}
