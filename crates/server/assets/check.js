// The "check a receipt or certificate" page, in the reader's own browser:
// the document's signature and its place in the audit log are checked
// here, with the server's published keys and the document's proof of
// logging (one the reader kept, or fetched now), by this file's code alone
// (RFC 8785 canonical JSON, SHA-256, Ed25519, RFC 9162 inclusion proofs).
// The form below it still checks on the server, with or without this.

const section = document.getElementById("browser-check");

const text = (name, values = {}) =>
  Object.entries(values).reduce((t, [k, v]) => t.replaceAll(`{${k}}`, String(v)), section.dataset[name]);

/** RFC 8785: keys sorted by UTF-16 code units, ECMAScript number and string forms. */
function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

const utf8 = (s) => new TextEncoder().encode(s);
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (h) => Uint8Array.from(h.match(/../g) || [], (b) => parseInt(b, 16));
const base64url = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const sha256 = async (...parts) => {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
};
const leafHash = (bytes) => sha256(Uint8Array.of(0), bytes);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** An Ed25519 signature block checked against the published keys. */
async function signed(keys, message, signature) {
  const key = keys.find((k) => k.key_id === signature.key_id);
  if (!key || signature.alg !== "Ed25519") return false;
  const imported = await crypto.subtle.importKey("raw", base64url(key.public_key), { name: "Ed25519" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify({ name: "Ed25519" }, imported, base64url(signature.value), utf8(message));
}

/** RFC 9162 §2.1.3.2: does the audit path lead from the leaf to the root? */
async function included(leaf, index, size, path, root) {
  if (index >= size) return false;
  let [fn, sn, r] = [index, size - 1, leaf];
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && same(r, root);
}

async function readFile(input) {
  const file = input.files && input.files[0];
  return file ? file.text() : null;
}

async function check() {
  const lines = [];
  const raw = (await readFile(document.getElementById("document"))) || document.getElementById("pasted").value;
  let receipt;
  try {
    receipt = JSON.parse(raw);
  } catch {
    return [[false, text("notReceipt")]];
  }
  if (!receipt || typeof receipt.body !== "object" || !receipt.signature) return [[false, text("notReceipt")]];
  const keys = (await (await fetch("/.well-known/baobao/keys.json")).json()).keys;
  const relabelled = receipt.body.receipt_id !== receipt.id || receipt.body.kind !== receipt.kind;
  const signatureOk = !relabelled && (await signed(keys, canonical(receipt.body), receipt.signature));
  lines.push([signatureOk, text(signatureOk ? "signatureOk" : "signatureBad")]);

  const sha = hex(await sha256(utf8(canonical(receipt))));
  const kept = await readFile(document.getElementById("proof"));
  let proof;
  if (kept) {
    try {
      proof = JSON.parse(kept);
    } catch {
      return [...lines, [false, text("proofBad")]];
    }
  } else {
    const response = await fetch(`/v1/audit/documents/${sha}/proof`);
    if (!response.ok) return [...lines, [false, text("notLogged")]];
    proof = await response.json();
  }
  const { entry, tree_head: head, inclusion } = proof;
  try {
    const leaf = await leafHash(
      utf8(
        canonical({
          at: entry.at,
          actor: entry.actor,
          action: entry.action,
          subject_ids: entry.subject_ids,
          document_sha256: sha,
        }),
      ),
    );
    const headSigned = await signed(
      keys,
      canonical({ tree_size: head.tree_size, root_hash: head.root_hash, timestamp: head.timestamp }),
      head.signature,
    );
    const inTree =
      headSigned &&
      inclusion.leaf_index === entry.leaf_index &&
      inclusion.tree_size === head.tree_size &&
      (await included(
        leaf,
        entry.leaf_index,
        head.tree_size,
        inclusion.audit_path.map(unhex),
        unhex(head.root_hash),
      ));
    const values = { leaf: entry.leaf_index, size: head.tree_size, signed: head.timestamp };
    lines.push([inTree, text(inTree ? "logOk" : "logBad", values)]);
  } catch {
    lines.push([false, text("proofBad")]);
  }
  return lines;
}

if (section && window.crypto && crypto.subtle) {
  const button = section.querySelector("button");
  const list = section.querySelector("ul");
  const verdict = section.querySelector("[role=status]");
  section.hidden = false;
  button.addEventListener("click", async () => {
    list.replaceChildren();
    let lines;
    try {
      lines = await check();
    } catch {
      lines = [[false, text("unavailable")]];
    }
    for (const [passed, words] of lines) {
      const item = document.createElement("li");
      item.className = passed ? "ok" : "error";
      item.textContent = `${passed ? "✓" : "✗"} ${words}`;
      list.append(item);
    }
    const all = lines.every(([passed]) => passed);
    verdict.className = all ? "ok" : "error";
    verdict.textContent = text(all ? "verdictOk" : "verdictBad");
  });
}
