//! [`SqliteStore`]: executions, learned durations and leases in one SQLite file (feature `sqlite`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest as _, Sha256};

use super::{
    Acquisition, Clock, Cursor, HistoryPage, Holder, LEARNED, Lease, Store, SystemClock, add, check_ttl, lost,
};
use crate::error::{Detail, Error, Result};
use crate::model::{CommitId, Id};
use crate::record::{ExecutionRecord, Step};

/// The schema this version writes. Each migration in [`MIGRATIONS`] moves a file one version up.
pub const SCHEMA_VERSION: u32 = 2;

/// `MIGRATIONS[n]` takes a file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: executions (one row each, the record's JSON and its checksum), learned durations, leases
    // and the log of every acquisition.
    "CREATE TABLE executions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        pipeline TEXT NOT NULL,
        id TEXT NOT NULL,
        record TEXT NOT NULL,
        checksum TEXT NOT NULL,
        UNIQUE (pipeline, id)
    );
    CREATE INDEX executions_by_pipeline ON executions (pipeline, seq);
    CREATE TABLE counters (pipeline TEXT PRIMARY KEY, saved INTEGER NOT NULL, last_token INTEGER NOT NULL);
    CREATE TABLE durations (
        pipeline TEXT NOT NULL,
        step TEXT NOT NULL,
        n INTEGER NOT NULL,
        millis INTEGER NOT NULL,
        PRIMARY KEY (pipeline, step, n)
    );
    CREATE TABLE leases (
        pipeline TEXT PRIMARY KEY,
        token INTEGER NOT NULL,
        holder TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE TABLE acquisitions (
        pipeline TEXT NOT NULL,
        token INTEGER NOT NULL,
        holder TEXT NOT NULL,
        acquired_ms INTEGER NOT NULL,
        ended_ms INTEGER NOT NULL,
        PRIMARY KEY (pipeline, token)
    );",
    // 1 → 2: what resume and `run` ask at the start of every execution, indexed: the executions not
    // over yet, and the commit each execution built.
    "ALTER TABLE executions ADD COLUMN running INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE executions ADD COLUMN built TEXT;
    UPDATE executions SET
        running = (json_extract(record, '$.outcome.status') = 'running'),
        built = json_extract(record, '$.image.commit');
    CREATE INDEX executions_running ON executions (pipeline, running, seq);
    CREATE INDEX executions_built ON executions (pipeline, built, seq);",
];

/// Executions, learned durations and leases of any number of pipelines in one SQLite file (rusqlite
/// with its bundled SQLite), which several processes may open at once: the embedded default for real
/// use (`.sendy/state.db`).
///
/// - Journal mode WAL and `synchronous=FULL`: a call that returned is on disk, through `kill -9` or a
///   power cut; every write is one transaction.
/// - Writers across processes take turns (`BEGIN IMMEDIATE`, waiting up to `busy_timeout`, 10 s by
///   default); readers never block.
/// - The file carries its schema version (`PRAGMA user_version`) and is migrated on open; a file
///   written by a newer version is refused ([`Error::InvalidConfig`]), never changed.
/// - On open the file is checked (`PRAGMA quick_check`): a damaged file is moved aside (to
///   `<name>.damaged-<time>`) with a warning and a new one started, and a record whose checksum does
///   not match (a torn write) is skipped with a warning: never fatal.
///
/// Each call runs one short transaction on the calling thread (about a millisecond, plus the disk's
/// `fsync`): on tokio's paused clock, simulated time does not move while it runs.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn db(what: &str, e: rusqlite::Error) -> Error {
    let busy =
        matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked));
    let detail = Detail::new(format!("sqlite store: {what}: {e}")).with_cause(e);
    if busy { Error::Transient(detail) } else { Error::Backend(detail) }
}

fn ms(at: jiff::Timestamp) -> i64 {
    at.as_millisecond()
}

fn at(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::MAX)
}

fn checksum(json: &str) -> String {
    Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the store at `path`, such as
    /// `.sendy/state.db`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the file was written by a newer version of this library, or cannot
    /// be created; [`Error::Transient`] if another process kept it locked for the whole busy timeout.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Arc::new(SystemClock))
    }

    /// As [`open`](Self::open), measuring leases with `clock`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::InvalidConfig(format!("sqlite store: cannot create {}: {e}", dir.display())))?;
        }
        let conn = match Self::connect(&path) {
            Ok(conn) => conn,
            Err(OpenError::Damaged(why)) => {
                let aside = path.with_extension(format!("damaged-{}", jiff::Timestamp::now().as_second()));
                tracing::warn!(path = %path.display(), aside = %aside.display(), %why, "sqlite store is damaged: moved aside, starting a new one");
                std::fs::rename(&path, &aside).map_err(|e| {
                    Error::InvalidConfig(format!(
                        "sqlite store {} is damaged ({why}) and cannot be moved aside: {e}",
                        path.display()
                    ))
                })?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Self::connect(&path).map_err(OpenError::into_error)?
            }
            Err(other) => return Err(other.into_error()),
        };
        Ok(SqliteStore { path, conn: Arc::new(Mutex::new(conn)), clock })
    }

    fn connect(path: &Path) -> std::result::Result<Connection, OpenError> {
        let mut conn = Connection::open(path).map_err(|e| OpenError::from_sqlite("open", e))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| OpenError::Other(db("busy timeout", e)))?;
        let check: String =
            conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| OpenError::from_sqlite("check", e))?;
        if check != "ok" {
            return Err(OpenError::Damaged(check));
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| OpenError::from_sqlite("journal mode", e))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| OpenError::Other(db("synchronous", e)))?;
        migrate(&mut conn).map_err(OpenError::Other)?;
        Ok(conn)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the file.
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn schema_version(&self) -> Result<u32> {
        self.with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| db("version", e)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }

    fn write<T>(&self, what: &str, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| db(what, e))?;
            let out = f(&tx)?;
            tx.commit().map_err(|e| db(what, e))?;
            Ok(out)
        })
    }
}

enum OpenError {
    Damaged(String),
    Other(Error),
}

impl OpenError {
    fn from_sqlite(what: &str, e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                OpenError::Damaged(e.to_string())
            }
            _ => OpenError::Other(db(what, e)),
        }
    }

    fn into_error(self) -> Error {
        match self {
            OpenError::Damaged(why) => Error::Backend(format!("sqlite store is damaged: {why}").into()),
            OpenError::Other(e) => e,
        }
    }
}

/// Brings the file to [`SCHEMA_VERSION`], one migration per transaction; the version is read again
/// inside each, so processes opening a new file at once migrate it once.
fn migrate(conn: &mut Connection) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| db("migrate", e))?;
        let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| db("version", e))?;
        if version > SCHEMA_VERSION {
            return Err(Error::InvalidConfig(format!(
                "sqlite store has schema version {version}, newer than this library's {SCHEMA_VERSION}: not changing it"
            )));
        }
        let Some(sql) = MIGRATIONS.get(version as usize) else { return Ok(()) };
        let to = version + 1;
        tx.execute_batch(&format!("{sql}; PRAGMA user_version = {to};"))
            .map_err(|e| db(&format!("migration {version} → {to}"), e))?;
        tx.commit().map_err(|e| db(&format!("migration {version} → {to}"), e))?;
    }
}

fn bump_saved(tx: &rusqlite::Transaction<'_>, pipeline: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO counters (pipeline, saved, last_token) VALUES (?1, 1, 0)
         ON CONFLICT (pipeline) DO UPDATE SET saved = saved + 1",
        params![pipeline],
    )
    .map_err(|e| db("count", e))?;
    Ok(())
}

/// A record read back, or `None` (with a warning) when its checksum or JSON is wrong.
fn decode(pipeline: &str, json: &str, sum: &str) -> Option<ExecutionRecord> {
    if checksum(json) != sum {
        tracing::warn!(pipeline, "sqlite store: a record whose checksum does not match was skipped (torn write?)");
        return None;
    }
    match serde_json::from_str(json) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(pipeline, error = %e, "sqlite store: an unreadable record was skipped");
            None
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn save(&self, pipeline: &str, record: &ExecutionRecord) -> Result<()> {
        let json = serde_json::to_string(record)
            .map_err(|e| Error::Backend(format!("sqlite store: cannot write the record: {e}").into()))?;
        let sum = checksum(&json);
        self.write("save", |tx| {
            let running = !record.outcome.is_final();
            let built = record.image.as_ref().map(|i| i.commit.as_str());
            let updated = tx
                .execute(
                    "UPDATE executions SET record = ?3, checksum = ?4, running = ?5, built = ?6
                     WHERE pipeline = ?1 AND id = ?2",
                    params![pipeline, record.id.as_str(), json, sum, running, built],
                )
                .map_err(|e| db("save", e))?;
            if updated == 0 {
                tx.execute(
                    "INSERT INTO executions (pipeline, id, record, checksum, running, built)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![pipeline, record.id.as_str(), json, sum, running, built],
                )
                .map_err(|e| db("save", e))?;
                bump_saved(tx, pipeline)?;
            }
            Ok(())
        })
    }

    async fn execution(&self, pipeline: &str, id: &Id) -> Result<Option<ExecutionRecord>> {
        self.with(|c| {
            let row: Option<(String, String)> = c
                .query_row(
                    "SELECT record, checksum FROM executions WHERE pipeline = ?1 AND id = ?2",
                    params![pipeline, id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| db("read", e))?;
            Ok(row.and_then(|(json, sum)| decode(pipeline, &json, &sum)))
        })
    }

    /// One indexed query.
    async fn unfinished(&self, pipeline: &str) -> Result<Vec<ExecutionRecord>> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT record, checksum FROM executions WHERE pipeline = ?1 AND running = 1 ORDER BY seq")
                .map_err(|e| db("unfinished", e))?;
            let rows = stmt
                .query_map(params![pipeline], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| db("unfinished", e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db("unfinished", e))?;
            Ok(rows.iter().filter_map(|(json, sum)| decode(pipeline, json, sum)).collect())
        })
    }

    /// One indexed query.
    async fn built(&self, pipeline: &str, commit: &CommitId) -> Result<Option<ExecutionRecord>> {
        self.with(|c| {
            let row: Option<(String, String)> = c
                .query_row(
                    "SELECT record, checksum FROM executions WHERE pipeline = ?1 AND built = ?2
                     ORDER BY seq DESC LIMIT 1",
                    params![pipeline, commit.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| db("built", e))?;
            Ok(row.and_then(|(json, sum)| decode(pipeline, &json, &sum)))
        })
    }

    async fn history(&self, pipeline: &str, limit: usize, before: Option<Cursor>) -> Result<HistoryPage> {
        let before = before.map_or(i64::MAX, |Cursor(c)| i64::try_from(c).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT seq, record, checksum FROM executions WHERE pipeline = ?1 AND seq < ?2
                     ORDER BY seq DESC LIMIT ?3",
                )
                .map_err(|e| db("history", e))?;
            let rows = stmt
                .query_map(params![pipeline, before, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(|e| db("history", e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db("history", e))?;
            let last = rows.last().map(|(seq, _, _)| *seq);
            let more = match last {
                Some(seq) => c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM executions WHERE pipeline = ?1 AND seq < ?2)",
                        params![pipeline, seq],
                        |r| r.get::<_, bool>(0),
                    )
                    .map_err(|e| db("history", e))?,
                None => false,
            };
            let records = rows.iter().filter_map(|(_, json, sum)| decode(pipeline, json, sum)).collect();
            let next = last.filter(|_| more).map(|seq| Cursor(u64::try_from(seq).unwrap_or(0)));
            Ok(HistoryPage { records, next })
        })
    }

    async fn count(&self, pipeline: &str) -> Result<u64> {
        self.with(|c| {
            let saved: Option<i64> = c
                .query_row("SELECT saved FROM counters WHERE pipeline = ?1", params![pipeline], |r| r.get(0))
                .optional()
                .map_err(|e| db("count", e))?;
            Ok(saved.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
        })
    }

    async fn durations(&self, pipeline: &str) -> Result<BTreeMap<Step, Vec<Duration>>> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT step, millis FROM durations WHERE pipeline = ?1 ORDER BY step, n")
                .map_err(|e| db("durations", e))?;
            let rows = stmt
                .query_map(params![pipeline], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(|e| db("durations", e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db("durations", e))?;
            let mut out: BTreeMap<Step, Vec<Duration>> = BTreeMap::new();
            for (step, millis) in rows {
                // A step this version does not know (written by a newer one) is skipped.
                let Ok(step) = serde_json::from_value::<Step>(serde_json::Value::String(step)) else { continue };
                out.entry(step).or_default().push(Duration::from_millis(u64::try_from(millis).unwrap_or(0)));
            }
            Ok(out)
        })
    }

    async fn learn(&self, pipeline: &str, step: Step, took: Duration) -> Result<()> {
        let name = serde_json::to_value(step)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{step:?}"));
        let millis = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        self.write("learn", |tx| {
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(n), 0) + 1 FROM durations WHERE pipeline = ?1 AND step = ?2",
                    params![pipeline, name],
                    |r| r.get(0),
                )
                .map_err(|e| db("learn", e))?;
            tx.execute(
                "INSERT INTO durations (pipeline, step, n, millis) VALUES (?1, ?2, ?3, ?4)",
                params![pipeline, name, next, millis],
            )
            .map_err(|e| db("learn", e))?;
            tx.execute(
                "DELETE FROM durations WHERE pipeline = ?1 AND step = ?2 AND n <= ?3",
                params![pipeline, name, next - LEARNED as i64],
            )
            .map_err(|e| db("learn", e))?;
            Ok(())
        })
    }

    async fn acquire(&self, pipeline: &str, holder: &Holder, ttl: Duration) -> Result<Lease> {
        check_ttl(ttl)?;
        let holder_json =
            serde_json::to_string(holder).map_err(|e| Error::Backend(format!("sqlite store: holder: {e}").into()))?;
        self.write("acquire", |tx| {
            let now = self.clock.now();
            let held: Option<(String, i64)> = tx
                .query_row("SELECT holder, expires_ms FROM leases WHERE pipeline = ?1", params![pipeline], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(|e| db("acquire", e))?;
            if let Some((other, expires)) = held.filter(|(_, expires)| *expires > ms(now)) {
                let holder = serde_json::from_str::<Holder>(&other).map_or(other, |h| h.to_string());
                return Err(Error::LeaseHeld { holder, expires_at: at(expires) });
            }
            tx.execute(
                "INSERT INTO counters (pipeline, saved, last_token) VALUES (?1, 0, 1)
                 ON CONFLICT (pipeline) DO UPDATE SET last_token = last_token + 1",
                params![pipeline],
            )
            .map_err(|e| db("acquire", e))?;
            let token: i64 = tx
                .query_row("SELECT last_token FROM counters WHERE pipeline = ?1", params![pipeline], |r| r.get(0))
                .map_err(|e| db("acquire", e))?;
            let expires_at = add(now, ttl);
            tx.execute(
                "INSERT INTO leases (pipeline, token, holder, expires_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pipeline) DO UPDATE SET token = ?2, holder = ?3, expires_ms = ?4",
                params![pipeline, token, holder_json, ms(expires_at)],
            )
            .map_err(|e| db("acquire", e))?;
            tx.execute(
                "INSERT INTO acquisitions (pipeline, token, holder, acquired_ms, ended_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![pipeline, token, holder_json, ms(now), ms(expires_at)],
            )
            .map_err(|e| db("acquire", e))?;
            Ok(Lease {
                pipeline: pipeline.to_owned(),
                holder: holder.clone(),
                token: u64::try_from(token).unwrap_or(0),
                expires_at,
            })
        })
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        check_ttl(ttl)?;
        let token = i64::try_from(lease.token).unwrap_or(i64::MAX);
        self.write("renew", |tx| {
            let now = self.clock.now();
            let expires_at = add(now, ttl);
            let renewed = tx
                .execute(
                    "UPDATE leases SET expires_ms = ?3 WHERE pipeline = ?1 AND token = ?2 AND expires_ms > ?4",
                    params![lease.pipeline, token, ms(expires_at), ms(now)],
                )
                .map_err(|e| db("renew", e))?;
            if renewed == 0 {
                return Err(lost(lease));
            }
            tx.execute(
                "UPDATE acquisitions SET ended_ms = ?3 WHERE pipeline = ?1 AND token = ?2",
                params![lease.pipeline, token, ms(expires_at)],
            )
            .map_err(|e| db("renew", e))?;
            Ok(Lease { expires_at, ..lease.clone() })
        })
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let token = i64::try_from(lease.token).unwrap_or(i64::MAX);
        self.write("release", |tx| {
            let now = ms(self.clock.now());
            let released = tx
                .execute(
                    "UPDATE leases SET expires_ms = 0 WHERE pipeline = ?1 AND token = ?2 AND expires_ms > ?3",
                    params![lease.pipeline, token, now],
                )
                .map_err(|e| db("release", e))?;
            if released > 0 {
                tx.execute(
                    "UPDATE acquisitions SET ended_ms = ?3 WHERE pipeline = ?1 AND token = ?2",
                    params![lease.pipeline, token, now],
                )
                .map_err(|e| db("release", e))?;
            }
            Ok(())
        })
    }

    async fn acquisitions(&self, pipeline: &str) -> Result<Vec<Acquisition>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT token, holder, acquired_ms, ended_ms FROM acquisitions WHERE pipeline = ?1 ORDER BY token",
                )
                .map_err(|e| db("acquisitions", e))?;
            let rows = stmt
                .query_map(params![pipeline], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
                })
                .map_err(|e| db("acquisitions", e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db("acquisitions", e))?;
            Ok(rows
                .into_iter()
                .filter_map(|(token, holder, acquired, ended)| {
                    Some(Acquisition {
                        token: u64::try_from(token).ok()?,
                        holder: serde_json::from_str(&holder).ok()?,
                        acquired_at: at(acquired),
                        ended_at: at(ended),
                    })
                })
                .collect())
        })
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use super::*;
    use crate::conformance::sample_record_for_tests as sample;

    /// A file written by schema 1 is migrated on open: the executions still running and the commit
    /// each built are found through the new indexed columns, filled from the records already there.
    #[tokio::test]
    async fn a_version_1_file_is_migrated_and_its_records_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let (running, built) = sample();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!("{}; PRAGMA user_version = 1;", MIGRATIONS[0])).unwrap();
            for (n, record) in [&running, &built].into_iter().enumerate() {
                let json = serde_json::to_string(record).unwrap();
                conn.execute(
                    "INSERT INTO executions (pipeline, id, record, checksum) VALUES ('p', ?1, ?2, ?3)",
                    params![format!("exec-{n}"), json, checksum(&json)],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.unfinished("p").await.unwrap(), [running]);
        let commit = built.image.as_ref().unwrap().commit.clone();
        assert_eq!(store.built("p", &commit).await.unwrap(), Some(built));
    }
}
