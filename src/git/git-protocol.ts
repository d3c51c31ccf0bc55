// The GIT_PROTOCOL value a client asks for (SSH env request, HTTP Git-Protocol
// header). It reaches git's environment, so only git's own shape passes:
// key or key=value words separated by ':', like "version=2" or
// "version=2:object-format=sha256". Anything else is dropped and git speaks v0.

const WORD = '[A-Za-z0-9._-]+(?:=[A-Za-z0-9._-]+)?';
const GIT_PROTOCOL_VALUE = new RegExp(`^${WORD}(?::${WORD})*$`);
const MAX_LENGTH = 100;

/** The value if it is a well-formed GIT_PROTOCOL, else undefined. */
export function checkedGitProtocol(value: string | undefined): string | undefined {
  if (value === undefined || value.length > MAX_LENGTH || !GIT_PROTOCOL_VALUE.test(value)) return undefined;
  return value;
}

/** The protocol version git will speak for a (checked) GIT_PROTOCOL: like git, the highest version=N it knows (0–2), else 0. */
export function protocolVersion(value: string | undefined): number {
  let version = 0;
  for (const word of (value ?? '').split(':')) {
    const m = /^version=([0-2])$/.exec(word);
    if (m) version = Math.max(version, Number(m[1]));
  }
  return version;
}
