// A seccomp filter for bubblewrap's --seccomp: the few system calls an app never
// needs and a kernel exploit usually starts from. Above all, no new user
// namespaces: inside one an unprivileged process holds every capability over the
// namespace (mounts, netfilter, …), the kernel's largest surface for escapes.
// bwrap cannot forbid them itself here (its --disable-userns needs a user
// namespace of its own, which a root-run bwrap does not make).

/** Per CPU: audit arch, then the numbers of the calls the filter treats. */
interface SyscallTable {
  arch: number;
  clone: number;
  unshare: number;
  clone3: number;
  denied: number[];
  /** x86-64 also accepts x32 calls (nr | 0x40000000); nothing here uses that ABI. */
  x32Bit?: number;
}

const X86_64: SyscallTable = {
  arch: 0xc000003e, clone: 56, unshare: 272, clone3: 435,
  // keyctl, add_key, request_key, bpf, userfaultfd, perf_event_open, io_uring_setup/enter/register
  denied: [250, 248, 249, 321, 323, 298, 425, 426, 427],
  x32Bit: 0x40000000,
};

const AARCH64: SyscallTable = {
  arch: 0xc00000b7, clone: 220, unshare: 97, clone3: 435,
  denied: [219, 217, 218, 280, 282, 241, 425, 426, 427],
};

const TABLES: Partial<Record<string, SyscallTable>> = { x64: X86_64, arm64: AARCH64 };

const CLONE_NEWUSER = 0x10000000;
const EPERM = 1;
const ENOSYS = 38;

// Classic BPF as seccomp reads it: struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }.
const LD_ABS_W = 0x20;
const JEQ = 0x15;
const JGE = 0x35;
const JSET = 0x45;
const RET = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
// struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (low half first on little-endian CPUs).
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

type Insn =
  | { op: 'ld'; offset: number }
  | { op: 'jeq' | 'jge' | 'jset'; k: number; then: string; else?: string }
  | { op: 'ret'; value: number }
  | { op: 'label'; name: string };

/** Lays out the program: labels become the relative jumps BPF wants (forward only). */
function assemble(program: Insn[]): Buffer {
  const code = program.filter((i) => i.op !== 'label');
  const at = new Map<string, number>();
  let n = 0;
  for (const i of program) {
    if (i.op === 'label') at.set(i.name, n);
    else n++;
  }
  const out = Buffer.alloc(code.length * 8);
  code.forEach((i, pc) => {
    const jump = (label: string | undefined) => {
      if (label === undefined) return 0;
      const target = at.get(label);
      if (target === undefined || target <= pc || target - pc - 1 > 255) throw new Error(`seccomp: bad jump to ${label}`);
      return target - pc - 1;
    };
    let opcode = 0;
    let jt = 0;
    let jf = 0;
    let k = 0;
    if (i.op === 'ld') [opcode, k] = [LD_ABS_W, i.offset];
    else if (i.op === 'ret') [opcode, k] = [RET, i.value];
    else if (i.op === 'jeq' || i.op === 'jge' || i.op === 'jset') {
      opcode = { jeq: JEQ, jge: JGE, jset: JSET }[i.op];
      [jt, jf, k] = [jump(i.then), jump(i.else), i.k];
    }
    out.writeUInt16LE(opcode, pc * 8);
    out.writeUInt8(jt, pc * 8 + 2);
    out.writeUInt8(jf, pc * 8 + 3);
    out.writeUInt32LE(k >>> 0, pc * 8 + 4);
  });
  return out;
}

/**
 * The filter for this CPU, or null where it has no table (then the sandbox runs
 * without one, and the start-up line says so). Everything not named is allowed.
 */
export function sandboxSeccompFilter(arch: string = process.arch): Buffer | null {
  const t = TABLES[arch];
  if (!t) return null;
  const program: Insn[] = [
    { op: 'ld', offset: ARCH },
    // Another ABI on this CPU (32-bit int 0x80 calls on x86-64) would bypass the numbers below.
    { op: 'jeq', k: t.arch, then: 'native', else: 'deny' },
    { op: 'label', name: 'native' },
    { op: 'ld', offset: NR },
  ];
  if (t.x32Bit) program.push({ op: 'jge', k: t.x32Bit, then: 'deny' });
  program.push(
    { op: 'jeq', k: t.clone, then: 'flags' },
    { op: 'jeq', k: t.unshare, then: 'flags' },
    // clone3 passes its flags in memory a filter cannot read; libc falls back to clone on ENOSYS.
    { op: 'jeq', k: t.clone3, then: 'nosys' },
    ...t.denied.map((nr): Insn => ({ op: 'jeq', k: nr, then: 'deny' })),
    { op: 'ret', value: RET_ALLOW },
    { op: 'label', name: 'flags' },
    { op: 'ld', offset: ARG0_LOW },
    { op: 'jset', k: CLONE_NEWUSER, then: 'deny' },
    { op: 'ret', value: RET_ALLOW },
    { op: 'label', name: 'nosys' },
    { op: 'ret', value: RET_ERRNO | ENOSYS },
    { op: 'label', name: 'deny' },
    { op: 'ret', value: RET_ERRNO | EPERM },
  );
  return assemble(program);
}

/**
 * A filter that allows everything, for a CPU with no table: bubblewrap's pid 1 still
 * applies a filter right after arming its death signal, which the start chain waits for
 * (see env-handoff.ts).
 */
export function allowAllSeccompFilter(): Buffer {
  return assemble([{ op: 'ret', value: RET_ALLOW }]);
}
