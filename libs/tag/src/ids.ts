// Random ids for messages, visitors and sessions. NOTE: crypto.randomUUID exists only in
// secure contexts; getRandomValues works on plain-http pages too.

/** A random RFC 4122 version-4 UUID. */
export function uuid(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  let h = '';
  for (let i = 0; i < 16; i++) h += (b[i]! + 256).toString(16).slice(1);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
