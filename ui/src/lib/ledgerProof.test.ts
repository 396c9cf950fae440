import { describe, expect, it } from "vitest";
import { keyId, leafHash, parseDigest, signedLines, verifyDigest, verifyInclusion, type Digest } from "./ledgerProof";

// The tree and its audit paths written out here from RFC 6962 §2.1, independently of the
// code under test (which follows RFC 9162's verification algorithm).
const bytes = (...parts: (number[] | Uint8Array)[]) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));
const sha = async (data: Uint8Array) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes(data)));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const node = (l: Uint8Array, r: Uint8Array) => sha(bytes([1], l, r));
const split = (n: number) => 2 ** Math.floor(Math.log2(n - 1));

async function mth(leaves: Uint8Array[]): Promise<Uint8Array> {
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return node(await mth(leaves.slice(0, k)), await mth(leaves.slice(k)));
}
async function path(m: number, leaves: Uint8Array[]): Promise<Uint8Array[]> {
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return m < k ? [...(await path(m, leaves.slice(0, k))), await mth(leaves.slice(k))] : [...(await path(m - k, leaves.slice(k))), await mth(leaves.slice(0, k))];
}

async function fixture(n: number) {
  const values: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const h = await sha(new TextEncoder().encode(`event ${i}`));
    values.push(bytes(h, h));
  }
  const leaves = await Promise.all(values.map((v) => sha(bytes([0], v))));
  return { values, leaves };
}

describe("inclusion proofs", () => {
  it("verify for every leaf of every tree size up to 33", async () => {
    const { values, leaves } = await fixture(33);
    for (let size = 1; size <= 33; size++) {
      const root = hex(await mth(leaves.slice(0, size)));
      for (let i = 0; i < size; i++) {
        const proof = (await path(i, leaves.slice(0, size))).map(hex);
        expect(await verifyInclusion(root, size, i, hex(values[i]), proof)).toBe(true);
      }
    }
    expect(await leafHash(hex(values[3]))).toBe(hex(leaves[3]));
  });

  it("are refused when a byte of the proof, the leaf or the root changes, or the place is wrong", async () => {
    const { values, leaves } = await fixture(29);
    const root = hex(await mth(leaves));
    const proof = (await path(11, leaves)).map(hex);
    const value = hex(values[11]);
    const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === "0" ? "1" : "0") + text.slice(at + 1);
    for (let p = 0; p < proof.length; p++) {
      for (const at of [0, 31, 63]) {
        const bent = proof.map((x, i) => (i === p ? flip(x, at) : x));
        expect(await verifyInclusion(root, 29, 11, value, bent)).toBe(false);
      }
    }
    expect(await verifyInclusion(root, 29, 11, flip(value, 70), proof)).toBe(false);
    expect(await verifyInclusion(flip(root, 5), 29, 11, value, proof)).toBe(false);
    expect(await verifyInclusion(root, 29, 12, value, proof)).toBe(false);
    expect(await verifyInclusion(root, 58, 11, value, proof)).toBe(false);
    expect(await verifyInclusion(root, 29, 11, value, proof.slice(1))).toBe(false);
    expect(await verifyInclusion(root, 29, 11, "zz", proof)).toBe(false);
  });
});

async function pemOf(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("spki", key));
  return `-----BEGIN PUBLIC KEY-----\n${btoa(String.fromCharCode(...der))}\n-----END PUBLIC KEY-----\n`;
}

const ED25519 = { generate: { name: "Ed25519" }, sign: { name: "Ed25519" } };
const P256 = { generate: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } };

describe("digest signatures", () => {
  for (const [name, kind] of [["Ed25519", ED25519], ["ECDSA P-256 (a KMS key)", P256]] as const) {
    it(`verify with the ${name} key that signed, and not once a field changes or under another key`, async () => {
      const pair = (await crypto.subtle.generateKey(kind.generate, true, ["sign", "verify"])) as CryptoKeyPair;
      const pem = await pemOf(pair.publicKey);
      const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      const id = hex(await sha(raw)).slice(0, 16);
      expect(await keyId(pem)).toBe(id);
      const unsigned: Digest = {
        format: "ledgerline-digest-v1",
        sequence: 4,
        tree_size: 29,
        root_hash: "ab".repeat(32),
        issued_at: "2026-12-07T10:00:00.000Z",
        key_id: id,
        previous: "cd".repeat(32),
        signature: "",
      };
      const signature = new Uint8Array(await crypto.subtle.sign(kind.sign, pair.privateKey, new TextEncoder().encode(signedLines(unsigned))));
      const digest = { ...unsigned, signature: btoa(String.fromCharCode(...signature)) };
      expect(await verifyDigest(digest, pem)).toBe(true);
      expect(parseDigest(`${JSON.stringify(unsigned)}\n${JSON.stringify(digest)}\n`)).toEqual(digest);
      expect(parseDigest("not json")).toBeNull();

      expect(await verifyDigest({ ...digest, tree_size: 30 }, pem)).toBe(false);
      expect(await verifyDigest({ ...digest, root_hash: "00".repeat(32) }, pem)).toBe(false);
      expect(await verifyDigest({ ...digest, previous: "ef".repeat(32) }, pem)).toBe(false);
      expect(await verifyDigest({ ...digest, signature: "garbage" }, pem)).toBe(false);
      const other = (await crypto.subtle.generateKey(kind.generate, true, ["sign", "verify"])) as CryptoKeyPair;
      expect(await verifyDigest(digest, await pemOf(other.publicKey))).toBe(false);
    });
  }

  it("refuses a public key of neither kind", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"])) as CryptoKeyPair;
    await expect(keyId(await pemOf(pair.publicKey))).rejects.toThrow("neither an Ed25519 nor a P-256 public key");
  });
});
