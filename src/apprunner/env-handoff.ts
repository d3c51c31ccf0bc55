// How an app's environment (config vars included) reaches its process without
// passing through any root process of the start chain and without ever being an
// argv word (every user on the host can read every process's argv): the server
// writes it on an inherited socket, and the last step inside the sandbox, already
// the app's user with no privileges, reads it, replaces its own environment with
// it and execs the app's command.
//
// The same socket tells that step whether the server still lives: the server holds
// its end open until the process exits, so end-of-file means the server is gone
// and the app must not start (see deathSignalGuard for why that closes the last
// window in which a process could outlive the server).

/** `<byte length>\n` then `NAME=value\0` for each variable. */
export function encodeEnvironment(env: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (name === '' || /[=\0]/.test(name)) throw new Error(`environment variable name ${JSON.stringify(name)} cannot be passed to a process`);
    if (value.includes('\0')) throw new Error(`environment variable ${name} holds a NUL byte, which no process environment can`);
    parts.push(Buffer.from(`${name}=${value}\0`));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
}

// perl (perl-base, in every Debian) because the step must exec with an environment of
// any names and values: dash cannot read NUL-separated records, bash refuses names it
// keeps read-only (UID, PPID…), and node cannot exec.
const LOADER = String.raw`
my ($fd, $waitForInit) = splice(@ARGV, 0, 2); shift @ARGV;
open(my $in, '<&=', $fd) or die "platformx: no environment on fd $fd: $!\n";
my $buf = '';
sub gone { print STDERR "platformx: the server stopped before the process started\n"; exit 125 }
sub more { sysread($in, $buf, 65536, length $buf) or gone() }
more() until $buf =~ /\n/;
my ($len) = $buf =~ /\A(\d+)\n/ or die "platformx: garbled environment\n";
substr($buf, 0, length($len) + 1) = '';
more() while length($buf) < $len;
if ($waitForInit) {
  # bubblewrap's pid 1 arms its death signal, then applies the seccomp filter: once the
  # filter shows, a server dying from here on takes this sandbox with it.
  for (1 .. 2000) {
    open(my $s, '<', '/proc/1/status') or last;
    local $/;
    last if <$s> =~ /^Seccomp:\s*[12]/m;
    select(undef, undef, undef, 0.001);
  }
}
my $ready = '';
vec($ready, fileno($in), 1) = 1;
gone() if select($ready, undef, undef, 0) > 0;
close $in;
%ENV = ();
for (split /\0/, substr($buf, 0, $len)) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v; }
exec { $ARGV[0] } @ARGV;
print STDERR "platformx: cannot run $ARGV[0]: $!\n";
exit 127;
`;

/**
 * argv of the in-sandbox step that loads the environment from `fd` and execs what
 * follows. With `waitForInit`, it first waits until the sandbox's pid 1 has armed its
 * death signal (shown by its seccomp filter), then checks the server still lives.
 */
export function loadEnvironmentArgv(perl: string, fd: number, waitForInit: boolean): string[] {
  return [perl, '-e', LOADER, String(fd), waitForInit ? '1' : '0', '--'];
}
