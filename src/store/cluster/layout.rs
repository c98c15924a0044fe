//! The data folder of the private cluster: initdb, the postmaster process and the files
//! around them (password, log), and running Postgres as an unprivileged user when we are root.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};
use rand::RngCore as _;

use super::{ClusterError, Postmaster, SUPERUSER};

/// The files of a data folder.
pub(super) struct Layout {
    pub(super) pgdata: PathBuf,
    pub(super) password_file: PathBuf,
    pub(super) log: PathBuf,
}

impl Layout {
    pub(super) fn create(data_dir: &Path, run_as: Option<&User>) -> Result<Self, ClusterError> {
        // As root the folder must be enterable by the postgres user; otherwise keep it private.
        let mode = if run_as.is_some() { 0o711 } else { 0o700 };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(data_dir)
            .map_err(|error| ClusterError::io("creating", data_dir, &error))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|error| ClusterError::io("resolving", data_dir, &error))?;
        let layout = Layout {
            pgdata: data_dir.join("pgdata"),
            password_file: data_dir.join("postgres-password"),
            log: data_dir.join("postgres.log"),
        };
        if let Some(user) = run_as {
            ensure_reachable(&data_dir, user)?;
            if !layout.pgdata.exists() {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&layout.pgdata)
                    .map_err(|error| ClusterError::io("creating", &layout.pgdata, &error))?;
                chown(&layout.pgdata, user)?;
            }
        }
        Ok(layout)
    }

    /// The superuser password, generated on first use and kept readable by us alone.
    pub(super) fn password(&self) -> Result<String, ClusterError> {
        if let Ok(password) = fs::read_to_string(&self.password_file) {
            return Ok(password.trim().to_owned());
        }
        let mut bytes = [0_u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let password = hex::encode(bytes);
        write_private(&self.password_file, &password)?;
        Ok(password)
    }

    /// The port of a postmaster already running on this folder, from its `postmaster.pid`.
    pub(super) fn running_port(&self) -> Option<u16> {
        running(&self.pgdata).map(|(_, port)| port)
    }

    pub(super) fn initdb(
        &self,
        bin_dir: &Path,
        run_as: Option<&User>,
        password: &str,
        durable: bool,
    ) -> Result<(), ClusterError> {
        let password_input = self.pgdata.with_file_name("initdb-password");
        write_private(&password_input, password)?;
        if let Some(user) = run_as {
            chown(&password_input, user)?;
        }
        let mut command = Command::new(bin_dir.join("initdb"));
        command
            .arg("--pgdata")
            .arg(&self.pgdata)
            .args([
                "--username",
                SUPERUSER,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
            ])
            .arg(format!("--pwfile={}", password_input.display()));
        if !durable {
            command.arg("--no-sync");
        }
        run_as_user(&mut command, run_as);
        let output = command.output();
        let _ = fs::remove_file(&password_input);
        let output =
            output.map_err(|error| ClusterError::io("running initdb in", &self.pgdata, &error))?;
        if !output.status.success() {
            return Err(ClusterError::Failed(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Starts the postmaster on `port` as `run_as`, tied to a thread of ours so that it stops
    /// with us (see [`stop_with_parent`]).
    pub(super) fn spawn(
        &self,
        bin_dir: &Path,
        run_as: Option<&User>,
        port: u16,
        durable: bool,
    ) -> Result<Postmaster, ClusterError> {
        let mut command = self.postmaster_command(bin_dir, port, durable)?;
        run_as_user(&mut command, run_as);
        stop_with_parent(&mut command);
        spawn_watched(command, bin_dir)
    }

    /// The postgres command line: loopback TCP only, output appended to our log.
    fn postmaster_command(
        &self,
        bin_dir: &Path,
        port: u16,
        durable: bool,
    ) -> Result<Command, ClusterError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.log)
            .map_err(|error| ClusterError::io("opening", &self.log, &error))?;
        let log_err = log
            .try_clone()
            .map_err(|error| ClusterError::io("opening", &self.log, &error))?;
        let mut command = Command::new(bin_dir.join("postgres"));
        command
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Own process group: a terminal's ctrl-c reaches us, and we stop Postgres in order.
            .process_group(0);
        if !durable {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        Ok(command)
    }

    pub(super) fn log_tail(&self) -> String {
        let Ok(file) = fs::File::open(&self.log) else {
            return String::new();
        };
        let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

/// The process id and port of a postmaster running on `pgdata`, from its `postmaster.pid`.
pub(super) fn running(pgdata: &Path) -> Option<(Pid, u16)> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = Pid::from_raw(lines.next()?.trim().parse().ok()?);
    kill(pid, None).ok()?;
    Some((pid, lines.nth(2)?.trim().parse().ok()?))
}

/// Has the kernel send the postmaster SIGINT (a fast shutdown) when the thread that spawned it
/// ends, and refuses to start it if that thread's process is already gone.
fn stop_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // system calls (prctl, getppid); it allocates nothing.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            // Runs after setuid (which would clear it), so the signal survives.
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)?;
            if nix::unistd::getppid().as_raw() != i32::try_from(parent).unwrap_or(-1) {
                return Err(std::io::Error::other(
                    "parent exited before postgres started",
                ));
            }
            Ok(())
        });
    }
}

/// Spawns `command` from a thread of its own and waits until it has started.
///
/// The thread that spawns the child is the "parent" for the death signal, so it lives exactly
/// as long as the child, and says on `exited` when the child ends.
fn spawn_watched(mut command: Command, bin_dir: &Path) -> Result<Postmaster, ClusterError> {
    let (started_sender, started) = mpsc::channel();
    let (exited_sender, exited) = mpsc::channel();
    std::thread::Builder::new()
        .name("postgres".into())
        .spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = started_sender.send(Ok(child.id()));
                let _ = child.wait();
                let _ = exited_sender.send(());
            }
            Err(error) => {
                let _ = started_sender.send(Err(error));
            }
        })
        .map_err(|error| ClusterError::Failed(format!("starting a thread: {error}")))?;
    let pid = started
        .recv()
        .map_err(|_| ClusterError::Failed("postgres thread ended".into()))?
        .map_err(|error| {
            ClusterError::Failed(format!(
                "starting {}: {error}",
                bin_dir.join("postgres").display()
            ))
        })?;
    Ok(Postmaster {
        pid: Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
        exited: std::sync::Mutex::new(exited),
    })
}

fn run_as_user(command: &mut Command, run_as: Option<&User>) {
    if let Some(user) = run_as {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        command.env("HOME", &user.dir).env("USER", &user.name);
    }
}

fn chown(path: &Path, user: &User) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .map_err(|error| ClusterError::io("changing the owner of", path, &error))
}

fn write_private(path: &Path, contents: &str) -> Result<(), ClusterError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o600);
    std::io::Write::write_all(
        &mut options
            .open(path)
            .map_err(|error| ClusterError::io("writing", path, &error))?,
        contents.as_bytes(),
    )
    .map_err(|error| ClusterError::io("writing", path, &error))
}

/// Checks that `user` may enter every folder down to `dir`, so initdb fails with a clear
/// message instead of a permission error deep inside Postgres.
fn ensure_reachable(dir: &Path, user: &User) -> Result<(), ClusterError> {
    for ancestor in dir.ancestors() {
        let Ok(metadata) = fs::metadata(ancestor) else {
            continue;
        };
        let mode = metadata.permissions().mode();
        let can_enter = if Uid::from_raw(metadata.uid()) == user.uid {
            mode & 0o100 != 0
        } else if Gid::from_raw(metadata.gid()) == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            return Err(ClusterError::Unreachable(ancestor.to_path_buf()));
        }
    }
    Ok(())
}
