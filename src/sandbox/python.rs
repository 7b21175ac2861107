//! Running a Python snippet in the sandbox (see the module documentation of [`super`]).
//!
//! Process tree: tdscale → *keeper* (host PID namespace; creates the namespaces) → *init*
//! (PID 1 of the new namespace; mounts the private `/tmp`, the size-capped working directory and
//! `/proc`, writes the snippet, forks *python*, then replaces itself with a small waiter) →
//! *python*. The keeper and init only wait and pass the exit status up; when init exits the
//! kernel kills every process left in the namespace, so nothing the snippet started outlives the
//! run.
//!
//! Init is the one process of the namespace the snippet can look at (`/proc/1/…`). Before the
//! snippet starts, init `exec`s the interpreter as a waiter ([`WAITER`]) with an argv that holds
//! only the waiter's code and the child's pid and an empty environment: from then on nothing of
//! tdscale's memory, command line (which may carry `--api-key`) or environment exists inside the
//! namespace. The snippet's own process is started with a fixed argv and environment. The
//! python child waits, on a close-on-exec pipe, until init's `exec` has happened.

use std::ffi::CString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Isolation, KillReason, Limits, Outcome, RunResult, SandboxError, drain};

/// How to run Python.
#[derive(Debug, Clone)]
pub struct PythonOptions {
    pub limits: Limits,
    /// The interpreter: the system one, readable by an unprivileged user.
    pub python: PathBuf,
    /// Run even where namespaces cannot be created (no network isolation, no PID namespace).
    pub allow_no_isolation: bool,
}

impl Default for PythonOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            python: PathBuf::from("/usr/bin/python3"),
            allow_no_isolation: false,
        }
    }
}

const NOBODY: u32 = 65534;

/// Whether this process can create the namespaces (checked once, by trying it in a child).
pub fn namespaces_available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let root = unsafe { libc::geteuid() } == 0;
            let flags = namespace_flags(root);
            let mut cmd = Command::new("/bin/true");
            unsafe {
                cmd.pre_exec(move || {
                    if libc::unshare(flags) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match cmd.status() {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("probe exited with {s}")),
                Err(e) => Err(format!("unshare failed: {e}")),
            }
        })
        .clone()
}

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const SYS_LANDLOCK_ADD_RULE: libc::c_long = 445;
const SYS_LANDLOCK_RESTRICT_SELF: libc::c_long = 446;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

// Landlock filesystem rights (ABI 1 unless noted).
const LL_WRITE_FILE: u64 = 1 << 1;
const LL_REMOVE_DIR: u64 = 1 << 4;
const LL_REMOVE_FILE: u64 = 1 << 5;
const LL_MAKE_CHAR: u64 = 1 << 6;
const LL_MAKE_DIR: u64 = 1 << 7;
const LL_MAKE_REG: u64 = 1 << 8;
const LL_MAKE_SOCK: u64 = 1 << 9;
const LL_MAKE_FIFO: u64 = 1 << 10;
const LL_MAKE_BLOCK: u64 = 1 << 11;
const LL_MAKE_SYM: u64 = 1 << 12;
const LL_REFER: u64 = 1 << 13; // ABI 2
const LL_TRUNCATE: u64 = 1 << 14; // ABI 3

/// `struct landlock_path_beneath_attr` (packed).
#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the kernel, 0 when Landlock is unavailable.
pub fn landlock_abi() -> i64 {
    // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) returns the ABI version.
    let v = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// The write-like rights the sandbox's Landlock ruleset handles for this ABI.
fn landlock_write_rights(abi: i64) -> u64 {
    let mut r = LL_WRITE_FILE
        | LL_REMOVE_DIR
        | LL_REMOVE_FILE
        | LL_MAKE_CHAR
        | LL_MAKE_DIR
        | LL_MAKE_REG
        | LL_MAKE_SOCK
        | LL_MAKE_FIFO
        | LL_MAKE_BLOCK
        | LL_MAKE_SYM;
    if abi >= 2 {
        r |= LL_REFER;
    }
    if abi >= 3 {
        r |= LL_TRUNCATE;
    }
    r
}

/// Restricts the calling process with Landlock so that it can write only beneath the given
/// directories (and to `/dev/null`); reading stays governed by file permissions.
/// Async-signal-safe: only syscalls on prepared data.
unsafe fn landlock_confine(
    rights: u64,
    dirs: &[CString],
    dir_fds: &[libc::c_int],
    dev_null: &CString,
) -> bool {
    unsafe {
        let attr: u64 = rights; // struct landlock_ruleset_attr, first member only (ABI 1 size)
        let ruleset = libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            &attr as *const u64,
            std::mem::size_of::<u64>(),
            0u32,
        ) as libc::c_int;
        if ruleset < 0 {
            return false;
        }
        let add = |fd: libc::c_int, access: u64| {
            let rule = PathBeneath {
                allowed_access: access,
                parent_fd: fd,
            };
            libc::syscall(
                SYS_LANDLOCK_ADD_RULE,
                ruleset,
                LANDLOCK_RULE_PATH_BENEATH,
                &rule as *const PathBeneath,
                0u32,
            ) == 0
        };
        let mut ok = true;
        for &fd in dir_fds {
            ok &= add(fd, rights);
        }
        for d in dirs {
            let fd = libc::open(d.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd >= 0 {
                ok &= add(fd, rights);
                libc::close(fd);
            }
        }
        let fd = libc::open(dev_null.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
        if fd >= 0 {
            ok &= add(fd, rights & (LL_WRITE_FILE | LL_TRUNCATE));
            libc::close(fd);
        }
        ok = ok && libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0u32) == 0;
        libc::close(ruleset);
        ok
    }
}

fn namespace_flags(root: bool) -> libc::c_int {
    let base = libc::CLONE_NEWNS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if root {
        base
    } else {
        base | libc::CLONE_NEWUSER
    }
}

/// Everything the child needs, prepared before fork (no allocation is allowed after it).
struct Plan {
    isolate: bool,
    root: bool,
    /// The host working directory (only without isolation; with it the working directory is a
    /// tmpfs inside the namespace).
    host_workdir: Option<CString>,
    tmp_targets: Vec<CString>,
    tmpfs: CString,
    tmpfs_opts: CString,
    /// Options of the working directory's tmpfs: its size is the disk limit.
    workdir_opts: CString,
    proc_target: CString,
    proc_fs: CString,
    slash: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    uid_map_path: CString,
    gid_map_path: CString,
    setgroups_path: CString,
    /// Where the working directory appears inside the sandbox.
    wd_inside: CString,
    /// The snippet, written to `main.py` in the working directory by init.
    code: Vec<u8>,
    main_py_inside: CString,
    /// The waiter init becomes: the interpreter, its argv (the pid slot is filled by init).
    waiter_program: CString,
    waiter_args: [CString; 5],
    /// Landlock write rights to handle (0: Landlock unavailable).
    landlock_rights: u64,
    /// Where writes stay allowed under Landlock (with isolation): the private mounts.
    landlock_dirs: Vec<CString>,
    dev_null: CString,
    limits: Limits,
}

/// The descriptor number the working directory is kept at (without isolation).
const WD_FD: libc::c_int = 200;
/// The working directory as the snippet sees it.
pub const WORKDIR_INSIDE: &str = "/tmp/work";

/// What init becomes once the snippet's process is forked: a waiter for that process (its pid is
/// the last argument) that passes its exit status up, ignoring the signals a snippet could send
/// to it. As PID 1 it also reaps every orphan of the namespace.
pub const WAITER: &str = "import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
child = int(sys.argv[1])
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        os._exit(126)
    if pid == child:
        break
os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
";

/// Writes a whole buffer to a path (async-signal-safe).
unsafe fn write_file(path: &CString, data: &[u8]) -> bool {
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return false;
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        n == data.len() as isize
    }
}

/// Closes every descriptor from 3 up, waits for `pid`, and exits the same way it did.
unsafe fn reap_and_exit(pid: libc::pid_t) -> ! {
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(126);
            }
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status));
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> bool {
    let l = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    unsafe { libc::setrlimit(resource, &l) == 0 }
}

/// Writes `pid` in decimal into `buf` with a terminating NUL (async-signal-safe).
fn pid_digits(pid: libc::pid_t, buf: &mut [u8; 16]) {
    let mut digits = [0u8; 12];
    let mut n = pid.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    buf[len] = 0;
}

/// Init's part once the namespaces exist: mounts, the snippet file, the python child; then init
/// becomes the waiter. Returns only in the python child.
unsafe fn init_setup(p: &Plan) -> std::io::Result<()> {
    unsafe {
        let fail = || Err(std::io::Error::last_os_error());
        if libc::mount(
            std::ptr::null(),
            p.slash.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return fail();
        }
        for t in &p.tmp_targets {
            // A missing mount point (no /dev/shm) is not an error; a failed mount over an
            // existing one is.
            if libc::access(t.as_ptr(), libc::F_OK) == 0
                && libc::mount(
                    p.tmpfs.as_ptr(),
                    t.as_ptr(),
                    p.tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    p.tmpfs_opts.as_ptr().cast(),
                ) != 0
            {
                return fail();
            }
        }
        // The working directory: a tmpfs of its own, so its size is the disk limit and nothing
        // the snippet writes reaches a disk of the host.
        if libc::mkdir(p.wd_inside.as_ptr(), 0o700) != 0
            || libc::mount(
                p.tmpfs.as_ptr(),
                p.wd_inside.as_ptr(),
                p.tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                p.workdir_opts.as_ptr().cast(),
            ) != 0
        {
            return fail();
        }
        let fd = libc::open(
            p.main_py_inside.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return fail();
        }
        let mut rest: &[u8] = &p.code;
        while !rest.is_empty() {
            let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                libc::close(fd);
                return fail();
            }
            rest = &rest[n as usize..];
        }
        libc::close(fd);
        if p.root
            && (libc::chown(p.wd_inside.as_ptr(), NOBODY, NOBODY) != 0
                || libc::chown(p.main_py_inside.as_ptr(), NOBODY, NOBODY) != 0)
        {
            return fail();
        }
        if libc::mount(
            p.proc_fs.as_ptr(),
            p.proc_target.as_ptr(),
            p.proc_fs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            return fail();
        }
        // Closed in init by its exec: the python child waits for that before the snippet runs.
        let mut gate = [0 as libc::c_int; 2];
        if libc::pipe2(gate.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return fail();
        }
        let py = libc::fork();
        if py < 0 {
            return fail();
        }
        if py == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::close(gate[1]);
            let mut byte = 0u8;
            while libc::read(gate[0], (&mut byte as *mut u8).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            libc::close(gate[0]);
            return Ok(());
        }
        // Init: nothing of tdscale may stay visible at /proc/1, so become the waiter now, with no
        // environment, no descriptor but the standard ones and the gate, and `/` as directory.
        libc::close(gate[0]);
        libc::chdir(p.slash.as_ptr());
        if gate[1] != 3 {
            libc::dup3(gate[1], 3, libc::O_CLOEXEC);
            libc::close(gate[1]);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        let mut pid_arg = [0u8; 16];
        pid_digits(py, &mut pid_arg);
        let argv: [*const libc::c_char; 7] = [
            p.waiter_args[0].as_ptr(),
            p.waiter_args[1].as_ptr(),
            p.waiter_args[2].as_ptr(),
            p.waiter_args[3].as_ptr(),
            p.waiter_args[4].as_ptr(),
            pid_arg.as_ptr().cast(),
            std::ptr::null(),
        ];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        libc::execve(p.waiter_program.as_ptr(), argv.as_ptr(), envp.as_ptr());
        // No waiter: refuse to run the snippet with tdscale's image as init. Init's exit kills
        // the (still gated) child with the namespace.
        let msg = b"sandbox: cannot start the namespace's init (exec of the interpreter failed)\n";
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::kill(py, libc::SIGKILL);
        libc::_exit(126);
    }
}

/// The code that runs between fork and exec.
unsafe fn child_setup(p: &Plan) -> std::io::Result<()> {
    unsafe {
        let fail = || Err(std::io::Error::last_os_error());
        if libc::setsid() < 0 {
            return fail();
        }
        // Die with tdscale.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if p.isolate && libc::unshare(namespace_flags(p.root)) != 0 {
            return fail();
        }
        if p.isolate {
            let mapped = p.root
                || (write_file(&p.setgroups_path, b"deny")
                    && write_file(&p.uid_map_path, &p.uid_map)
                    && write_file(&p.gid_map_path, &p.gid_map));
            if !mapped {
                return fail();
            }
            // Keeper: stays in the host PID namespace and waits.
            let init = libc::fork();
            if init < 0 {
                return fail();
            }
            if init > 0 {
                reap_and_exit(init);
            }
            // Init: PID 1 of the new namespace. Returns only in the python child.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            init_setup(p)?;
            if libc::chdir(p.wd_inside.as_ptr()) != 0 {
                return fail();
            }
        } else {
            let Some(dir) = &p.host_workdir else {
                return Err(std::io::Error::other("no working directory"));
            };
            let opened = libc::open(
                dir.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if opened < 0 || libc::dup3(opened, WD_FD, libc::O_CLOEXEC) < 0 {
                return fail();
            }
            libc::close(opened);
            if libc::fchdir(WD_FD) != 0 {
                return fail();
            }
        }
        let l = &p.limits;
        let ok = set_limit(libc::RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds + 1)
            && set_limit(libc::RLIMIT_AS, l.memory_bytes, l.memory_bytes)
            && set_limit(libc::RLIMIT_FSIZE, l.file_size_bytes, l.file_size_bytes)
            && set_limit(libc::RLIMIT_NOFILE, l.open_files, l.open_files)
            && set_limit(libc::RLIMIT_NPROC, l.processes, l.processes)
            && set_limit(libc::RLIMIT_CORE, 0, 0);
        if !ok {
            return fail();
        }
        if p.root
            && (libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0)
        {
            return fail();
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return fail();
        }
        if p.landlock_rights != 0 {
            // Writes only beneath the working directory and the private tmpfs mounts.
            let (dirs, fds): (&[CString], &[libc::c_int]) = if p.isolate {
                (&p.landlock_dirs, &[])
            } else {
                (&[], &[WD_FD])
            };
            if !landlock_confine(p.landlock_rights, dirs, fds, &p.dev_null) {
                return fail();
            }
        }
        if !p.isolate {
            libc::close(WD_FD);
        }
        Ok(())
    }
}

fn child_cpu_ms() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    ms(u.ru_utime) + ms(u.ru_stime)
}

/// Serialises runs' CPU accounting: RUSAGE_CHILDREN is per process, so concurrent runs would
/// see each other's time.
static CPU_LOCK: Mutex<()> = Mutex::new(());

/// Prefix of the per-run working directories on the host (only used without namespaces); the
/// owner's tag and a random part follow.
const HOST_WORKDIR_PREFIX: &str = "tdscale-sandbox-";

/// A fresh working directory on the host, named after this process so that a later run can tell
/// whether its owner is gone.
fn host_workdir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!(
            "{HOST_WORKDIR_PREFIX}{}-",
            crate::store::owner::Owner::current().tag()
        ))
        .tempdir()
}

/// Removes the per-run working directories under `dir` whose owner process is gone. Directories
/// without an owner tag (or of a live owner) are left alone.
pub fn remove_orphan_workdirs(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(HOST_WORKDIR_PREFIX))
        else {
            continue;
        };
        let Some(owner) = rest
            .split('-')
            .next()
            .and_then(crate::store::owner::Owner::parse)
        else {
            continue;
        };
        if !owner.is_alive() {
            tracing::debug!(
                "removing {}, left by a process that is gone",
                e.path().display()
            );
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Runs `code` with `python3` in the sandbox and returns how it ended.
///
/// ```no_run
/// use tdscale::sandbox::python::{run, PythonOptions};
/// let r = run("print(sum(range(10)))", &PythonOptions::default()).unwrap();
/// assert_eq!(r.stdout, "45\n");
/// ```
pub fn run(code: &str, opts: &PythonOptions) -> Result<RunResult, SandboxError> {
    // The first run of a process removes the working directories of owners that are gone (a
    // tdscale killed mid-run cannot remove its own).
    static CLEANED: OnceLock<()> = OnceLock::new();
    CLEANED.get_or_init(|| remove_orphan_workdirs(&std::env::temp_dir()));
    let root = unsafe { libc::geteuid() } == 0;
    let abi = landlock_abi();
    let mut isolation = Isolation {
        landlock: abi >= 1,
        uid: if root {
            NOBODY
        } else {
            unsafe { libc::geteuid() }
        },
        ..Default::default()
    };
    let isolate = match namespaces_available() {
        Ok(()) => true,
        Err(why) if opts.allow_no_isolation => {
            isolation.notes.push(format!(
                "no namespaces ({why}): network and process isolation are off"
            ));
            false
        }
        Err(why) => return Err(SandboxError::NoIsolation(why)),
    };
    isolation.network_isolated = isolate;
    isolation.pid_namespace = isolate;
    isolation.private_tmp = isolate;
    if !isolation.landlock {
        isolation.notes.push(
            "landlock: not available in this kernel; writes are confined by uid and private tmpfs mounts"
                .into(),
        );
    }

    // Only without namespaces does the working directory live on the host.
    let host_workdir = if isolate {
        None
    } else {
        let dir = host_workdir()?;
        std::fs::write(dir.path().join("main.py"), code)?;
        Some(dir)
    };
    let cstr = |s: &str| CString::new(s).expect("no NUL in constants");
    let path_cstr = |p: &std::path::Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|e| SandboxError::Start(e.to_string()))
    };
    if root && let Some(dir) = &host_workdir {
        // The snippet runs as nobody: it owns its working directory and nothing else.
        for p in [dir.path().to_path_buf(), dir.path().join("main.py")] {
            unsafe { libc::chown(path_cstr(&p)?.as_ptr(), NOBODY, NOBODY) };
        }
    }
    let uid = unsafe { libc::getuid() };
    let gid = unsafe { libc::getgid() };
    let mut tmp_targets = vec![
        cstr("/tmp"),
        cstr("/var/tmp"),
        cstr("/dev/shm"),
        cstr("/run/lock"),
    ];
    if !root && let Some(home) = std::env::var_os("HOME") {
        // Hide the user's files behind an empty tmpfs.
        tmp_targets.push(
            CString::new(home.as_encoded_bytes())
                .map_err(|e| SandboxError::Start(e.to_string()))?,
        );
    }
    let mut landlock_dirs = tmp_targets.clone();
    landlock_dirs.push(cstr(WORKDIR_INSIDE));
    // A bound on files too: an empty file costs memory of the kernel but no bytes of the size.
    let inodes = |bytes: u64| (bytes / (16 << 10)).max(1024);
    let python = path_cstr(&opts.python)?;
    let plan = Plan {
        isolate,
        root,
        host_workdir: host_workdir
            .as_ref()
            .map(|d| path_cstr(d.path()))
            .transpose()?,
        tmp_targets,
        tmpfs: cstr("tmpfs"),
        tmpfs_opts: CString::new(format!(
            "size={},nr_inodes={},mode=1777",
            opts.limits.tmpfs_bytes,
            inodes(opts.limits.tmpfs_bytes)
        ))
        .expect("no NUL"),
        workdir_opts: CString::new(format!(
            "size={},nr_inodes={},mode=0700",
            opts.limits.disk_bytes,
            inodes(opts.limits.disk_bytes)
        ))
        .expect("no NUL"),
        proc_target: cstr("/proc"),
        proc_fs: cstr("proc"),
        slash: cstr("/"),
        uid_map: format!("0 {uid} 1").into_bytes(),
        gid_map: format!("0 {gid} 1").into_bytes(),
        uid_map_path: cstr("/proc/self/uid_map"),
        gid_map_path: cstr("/proc/self/gid_map"),
        setgroups_path: cstr("/proc/self/setgroups"),
        wd_inside: cstr(WORKDIR_INSIDE),
        code: code.as_bytes().to_vec(),
        main_py_inside: cstr(&format!("{WORKDIR_INSIDE}/main.py")),
        waiter_program: python.clone(),
        waiter_args: [python, cstr("-I"), cstr("-S"), cstr("-c"), cstr(WAITER)],
        landlock_rights: if abi >= 1 {
            landlock_write_rights(abi)
        } else {
            0
        },
        landlock_dirs,
        dev_null: cstr("/dev/null"),
        limits: opts.limits.clone(),
    };

    let mut cmd = Command::new(&opts.python);
    // -I: isolated mode (no user site, no PYTHON* variables); -B: no bytecode files.
    cmd.args(["-I", "-B", "main.py"])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env(
            "HOME",
            match &host_workdir {
                None => std::path::Path::new(WORKDIR_INSIDE),
                Some(dir) => dir.path(),
            },
        )
        .env("LANG", "C.UTF-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(move || child_setup(&plan));
    }
    let _cpu_guard = CPU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cpu_before = child_cpu_ms();
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError::Start(format!("{}: {e}", opts.python.display())))?;
    let pgid = child.id() as libc::pid_t;
    let over_out = Arc::new(AtomicBool::new(false));
    let over_err = Arc::new(AtomicBool::new(false));
    let out_t = drain(
        child.stdout.take().expect("piped"),
        opts.limits.output_bytes,
        over_out.clone(),
    );
    let err_t = drain(
        child.stderr.take().expect("piped"),
        opts.limits.output_bytes,
        over_err.clone(),
    );
    let kill = || unsafe {
        libc::kill(-pgid, libc::SIGKILL);
        libc::kill(pgid, libc::SIGKILL);
    };
    let mut reason = None;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if over_out.load(Ordering::Relaxed) || over_err.load(Ordering::Relaxed) {
            reason = Some(KillReason::OutputLimit);
            kill();
        } else if started.elapsed() > opts.limits.timeout {
            reason = Some(KillReason::WallTimeout);
            kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    // Anything left in the process group (only possible without a PID namespace).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let cpu_ms = child_cpu_ms().saturating_sub(cpu_before);
    let outcome = match (reason, status.code(), status.signal()) {
        (Some(r), _, _) => Outcome::Killed { reason: r },
        (None, _, Some(libc::SIGXCPU)) => Outcome::Killed {
            reason: KillReason::CpuLimit,
        },
        (None, _, Some(libc::SIGKILL)) if cpu_ms / 1000 >= opts.limits.cpu_seconds => {
            Outcome::Killed {
                reason: KillReason::CpuLimit,
            }
        }
        (None, _, Some(libc::SIGXFSZ)) => Outcome::Killed {
            reason: KillReason::FileSizeLimit,
        },
        (None, Some(c), _) if c > 128 && c - 128 == libc::SIGXFSZ => Outcome::Killed {
            reason: KillReason::FileSizeLimit,
        },
        (None, Some(c), _) if c > 128 && c - 128 == libc::SIGXCPU => Outcome::Killed {
            reason: KillReason::CpuLimit,
        },
        (None, Some(c), _) => Outcome::Exited { code: c },
        (None, None, Some(s)) => Outcome::Signaled { signal: s },
        (None, None, None) => Outcome::Exited { code: -1 },
    };
    let killed_reason = match outcome {
        Outcome::Killed { reason } => Some(reason),
        _ => None,
    };
    Ok(RunResult {
        stdout_truncated: over_out.load(Ordering::Relaxed),
        stderr_truncated: over_err.load(Ordering::Relaxed),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        exit_code: match outcome {
            Outcome::Exited { code } => Some(code),
            _ => None,
        },
        timed_out: killed_reason == Some(KillReason::WallTimeout),
        killed_reason,
        outcome,
        wall_ms,
        cpu_ms,
        isolation,
    })
}
