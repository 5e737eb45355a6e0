// UUIDv7 (RFC 9562): the protocol asks devices to make record and mutation ids themselves, and v7
// keeps them in creation order, which databases index well.

let lastMs = 0;
let seq = 0;

/** A new UUIDv7. Ids made in the same millisecond still sort in the order they were made. */
export function uuidv7(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let ms = Date.now();
  if (ms <= lastMs) {
    ms = lastMs;
    seq = (seq + 1) & 0xfff;
    if (seq === 0) ms = ++lastMs;
  } else {
    seq = b[6]! & 0x07; // a random start keeps ids of two devices apart
  }
  lastMs = ms;
  // 48 bits of time, then version 7 and 12 bits of sequence, then the variant.
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | ((seq >> 8) & 0x0f);
  b[7] = seq & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
