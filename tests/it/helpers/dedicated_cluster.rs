//! A Postgres cluster of one test's own, which the test may crash and restart without
//! disturbing the cluster the other tests share. Commits are synchronous, so that whatever
//! was acknowledged survives a crash of Postgres (not of the machine: fsync stays off).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use creditgate::store::cluster::{self, ClusterOptions, PrivateCluster};
use creditgate::store::{PoolLimits, connect_pool, migrate};

use super::TestDatabase;

/// The user Postgres runs as when the tests run as root (it refuses root).
const RUN_AS: &str = "postgres";

/// A running cluster in a temporary folder, with the migrated `creditgate` database.
pub struct DedicatedCluster {
    pgdata: PathBuf,
    /// Owns the folder; declared last so Postgres stops before the folder goes.
    _folder: tempfile::TempDir,
}

impl DedicatedCluster {
    /// Creates and starts the cluster; returns it with its migrated database.
    pub async fn start() -> (DedicatedCluster, TestDatabase) {
        let folder = tempfile::tempdir().unwrap();
        // As root Postgres runs as `postgres`, which must be able to enter the folder.
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data_dir = folder.path().join("data");
        let started = PrivateCluster::start(&ClusterOptions {
            data_dir: data_dir.clone(),
            bin_dir: None,
            // A synced initdb takes seconds on a busy machine; synchronous commit is turned
            // back on for the database below, which is what a Postgres crash puts to the test.
            durable: false,
        })
        .await
        .expect("starting a dedicated cluster");
        let config = started.connection().config(cluster::DATABASE);
        // From here on pg_ctl restarts and stops the postmaster; the handle must not signal a
        // process id that a restart has made stale.
        std::mem::forget(started);
        let dedicated = DedicatedCluster {
            pgdata: data_dir.canonicalize().unwrap().join("pgdata"),
            _folder: folder,
        };
        prepare(&config).await;
        let pool = connect_pool(
            config.clone(),
            PoolLimits {
                max_connections: 4,
                statement_timeout: Duration::from_secs(30),
                lock_timeout: Duration::from_secs(30),
                acquire_timeout: Duration::from_secs(30),
            },
        )
        .unwrap();
        let session = pool.get().await.unwrap();
        let commit: String = session
            .query_one("SHOW synchronous_commit", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(commit, "on", "sessions must commit synchronously");
        drop(session);
        (dedicated, TestDatabase { pool, config })
    }

    /// `pg_ctl restart -m immediate`: every backend dies without a checkpoint, as in a crash;
    /// the postmaster comes back on the same port after crash recovery.
    pub fn restart_immediately(&self) {
        let status = self.pg_ctl(&["restart", "-m", "immediate", "-w", "-t", "60"]);
        assert!(status.success(), "pg_ctl restart failed: {status}");
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::ExitStatus {
        let mut command = Command::new(bin_dir(&self.pgdata).join("pg_ctl"));
        command
            .args(args)
            .arg("-D")
            .arg(&self.pgdata)
            // The restarted postmaster inherits these; nothing may wait on its output.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if nix::unistd::Uid::effective().is_root() {
            let user = nix::unistd::User::from_name(RUN_AS).unwrap().unwrap();
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        command.status().unwrap()
    }
}

impl Drop for DedicatedCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }
}

/// Turns synchronous commit on for the database and migrates it.
async fn prepare(config: &tokio_postgres::Config) {
    let (mut client, driver) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(driver);
    // A database setting outranks the server's `-c synchronous_commit=off`: every later
    // session waits for its commit record to be written before the commit is answered.
    client
        .batch_execute(&format!(
            "ALTER DATABASE {} SET synchronous_commit = on",
            cluster::DATABASE
        ))
        .await
        .unwrap();
    migrate::migrate(&mut client).await.unwrap();
}

/// The server binaries' folder, from the command line the postmaster recorded at start.
fn bin_dir(pgdata: &Path) -> PathBuf {
    let options = std::fs::read_to_string(pgdata.join("postmaster.opts")).unwrap();
    let postgres = options.split_whitespace().next().unwrap().trim_matches('"');
    Path::new(postgres).parent().unwrap().to_path_buf()
}
