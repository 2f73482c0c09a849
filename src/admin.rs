//! Podmin commands (`lifeboat user ...`, `backups ...`, `check`, `mail test`) and the
//! local admin socket that carries them to a running server.
//!
//! A command is an [`AdminRequest`]. When `lifeboat serve` holds the data folder, the
//! CLI sends the request as one JSON line over `DATA_DIR/admin.sock` (owner-only
//! permissions; the server also checks the peer's uid) and prints the reply; otherwise
//! the CLI opens the store itself and runs [`execute`] in-process. Either way the same
//! code runs. Secrets (passwords) travel only over that socket, never in argv.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::mail::Mail;
use crate::pod::Pod;
use crate::services::Services;
use crate::{Error, Result};

/// The largest request accepted on the admin socket (archives travel through it).
const MAX_REQUEST_BYTES: u64 = 512 * 1024 * 1024;

/// One podmin command.
#[derive(Serialize, Deserialize)]
pub enum AdminRequest {
    /// Verify every stored value.
    Check,
    /// Send a test message through the configured mail transport.
    MailTest { to: String },
    /// Create an account whose email counts as confirmed.
    UserAdd {
        username: String,
        email: String,
        password: String,
    },
    /// List the accounts.
    UserList,
    /// Create an account from a diaspora* archive (a move into this pod).
    ArchiveImport {
        archive: Vec<u8>,
        username: String,
        password: String,
        email: Option<String>,
    },
    /// Write an account's archive.
    ArchiveExport { username: String },
    /// List the backup slots held for other pods (never their content).
    BackupsList,
    /// Counts and bytes of the held backups.
    BackupsStats,
    /// List the remote people this pod knows.
    PeopleList,
    /// The archive contacts waiting to be discovered, by pod.
    PeopleQueue,
}

impl AdminRequest {
    /// The command's name, for the log (never its arguments: they may hold a password).
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::Check => "check",
            AdminRequest::MailTest { .. } => "mail test",
            AdminRequest::UserAdd { .. } => "user add",
            AdminRequest::UserList => "user list",
            AdminRequest::ArchiveImport { .. } => "archive import",
            AdminRequest::ArchiveExport { .. } => "archive export",
            AdminRequest::BackupsList => "backups list",
            AdminRequest::BackupsStats => "backups stats",
            AdminRequest::PeopleList => "people list",
            AdminRequest::PeopleQueue => "people queue",
        }
    }
}

/// What a command answers: text for the terminal, and optionally a file's bytes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AdminReply {
    pub output: String,
    pub file: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
enum Wire {
    Ok(AdminReply),
    Err { code: String, message: String },
}

/// Runs one command against the pod.
pub async fn execute(pod: &Arc<Pod>, services: &Services, request: AdminRequest) -> Result<AdminReply> {
    match request {
        AdminRequest::Check => {
            let report = pod.store.check()?;
            let mut output = String::new();
            for (tree, count) in &report.trees {
                output.push_str(&format!("{tree}: {count} entries\n"));
            }
            if report.problems.is_empty() {
                output.push_str("store OK\n");
                Ok(AdminReply { output, file: None })
            } else {
                for p in &report.problems {
                    output.push_str(&format!("DAMAGED {p}\n"));
                }
                Err(Error::internal(format!(
                    "{output}{} damaged values",
                    report.problems.len()
                )))
            }
        }
        AdminRequest::BackupsList => Ok(AdminReply {
            output: crate::backup::holder::format_list(&services.holder.list()?),
            file: None,
        }),
        AdminRequest::BackupsStats => Ok(AdminReply {
            output: crate::backup::holder::format_stats(&services.holder.stats()?),
            file: None,
        }),
        AdminRequest::MailTest { to } => {
            let mail = Mail {
                to: to.clone(),
                subject: format!("lifeboat test message from {}", pod.config.public_host()),
                text: format!(
                    "This is a test message from the lifeboat pod at {}.\nIf you can read it, mail works.\n",
                    pod.config.public_url()
                ),
            };
            pod.mailer.send_now(&mail).await?;
            Ok(AdminReply {
                output: format!("test message sent to {to}\n"),
                file: None,
            })
        }
        AdminRequest::UserAdd {
            username,
            email,
            password,
        } => {
            let form = crate::account::SignUp {
                username,
                email,
                password,
                passphrase: None,
                backups_opted_out: false,
            };
            let account = crate::account::create_by_podmin(pod, form).await?;
            let admin = if pod.config.accounts.admins.contains(&account.username) {
                " (admin)"
            } else {
                ""
            };
            Ok(AdminReply {
                output: format!("created {}{admin}\n", account.diaspora_id(&pod.config.public_host())),
                file: None,
            })
        }
        AdminRequest::ArchiveImport {
            archive,
            username,
            password,
            email,
        } => {
            let imported = crate::arrivals::import::import_archive(pod, &archive, username, password, email).await?;
            let (account, repairs, from) = (imported.account, imported.repairs, imported.old_id);
            let moved = match from {
                Some(old) => format!(" (moved from {old}; the move is being announced)"),
                None => " (the archive names no old identity: nothing to announce)".into(),
            };
            let mut output = format!("created {}{moved}\n", account.diaspora_id(&pod.config.public_host()));
            if !repairs.is_empty() {
                output.push_str("Repaired so that diaspora* pods keep it:\n");
                for repair in &repairs {
                    output.push_str(&format!("  - {repair}\n"));
                }
            }
            Ok(AdminReply { output, file: None })
        }
        AdminRequest::ArchiveExport { username } => {
            let account = crate::account::open_account(&pod.store, &username)?;
            let bytes =
                crate::account::archive::write_archive(&account, &pod.config.public_host(), &pod.config.public_url())?;
            Ok(AdminReply {
                output: String::new(),
                file: Some(bytes),
            })
        }
        AdminRequest::PeopleList => Ok(AdminReply {
            output: format_people(&crate::people::PeopleStore::people(&pod.store)?),
            file: None,
        }),
        AdminRequest::PeopleQueue => Ok(AdminReply {
            output: format_queue(&crate::people::queue::overview(&pod.store)?),
            file: None,
        }),
        AdminRequest::UserList => {
            use crate::account::AccountStore;
            let host = pod.config.public_host();
            let mut output = String::new();
            for account in AccountStore::accounts(&pod.store)? {
                let state = match &account.closed {
                    Some(c) => match &c.moved_to {
                        Some(to) => format!("moved to {to}"),
                        None => "closed".into(),
                    },
                    None if account.email_confirmed => "active".into(),
                    None => "email not confirmed".into(),
                };
                let admin = if pod.config.accounts.admins.contains(&account.username) {
                    ", admin"
                } else {
                    ""
                };
                output.push_str(&format!(
                    "{}\t{}\t{state}{admin}\n",
                    account.diaspora_id(&host),
                    account.email
                ));
            }
            if output.is_empty() {
                output.push_str("no accounts\n");
            }
            Ok(AdminReply { output, file: None })
        }
    }
}

/// `lifeboat people list`: one line per known person.
fn format_people(people: &[crate::people::Person]) -> String {
    use crate::backup::home::utc;
    let mut out = String::new();
    for person in people {
        let key = crate::federation::signature::public_key_from_pem(&person.public_key_pem)
            .map(|key| crate::federation::signature::short_fingerprint(&key))
            .unwrap_or_else(|_| "unreadable".into());
        let state = match (&person.moved_to, person.closed_unix) {
            (Some(to), _) => format!("moved to {to}"),
            (None, Some(at)) => format!("closed {}", utc(at)),
            (None, None) => "active".into(),
        };
        out.push_str(&format!(
            "{}	key {key}	{}	fetched {}	{state}
",
            person.diaspora_id,
            person.pod_origin,
            utc(person.fetched_unix)
        ));
    }
    out.push_str(&format!("{} known people\n", people.len()));
    out
}

/// `lifeboat people queue`: one line per pod with people waiting.
fn format_queue(hosts: &[(String, crate::people::queue::HostState, usize)]) -> String {
    use crate::backup::home::utc;
    let waiting: usize = hosts.iter().map(|(_, _, n)| n).sum();
    let mut out = format!("{waiting} people waiting to be discovered, on {} pods\n", hosts.len());
    for (host, state, n) in hosts {
        out.push_str(&format!("{host}	{n} waiting	next {}", utc(state.next_unix)));
        if let Some(since) = state.failing_since {
            out.push_str(&format!(
                "	failing since {} ({} attempts): {}",
                utc(since),
                state.failures,
                state.last_error.as_deref().unwrap_or("")
            ));
        }
        out.push('\n');
    }
    out
}

/// The socket's path in a data folder.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

/// Serves the admin socket until `shutdown` turns true.
pub async fn serve(
    pod: Arc<Pod>,
    services: Arc<Services>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let path = socket_path(pod.store.dir());
    // We hold the data folder's lock, so a socket file left here is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .map_err(|e| Error::internal(format!("cannot create admin socket {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let own_uid = unsafe { libc::geteuid() };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let peer_uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
                if peer_uid != own_uid && peer_uid != 0 {
                    tracing::warn!(peer_uid, "admin socket: refused a connection from another user");
                    continue;
                }
                let (pod, services) = (pod.clone(), services.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(pod, services, stream).await {
                        tracing::warn!("admin socket: {e}");
                    }
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn answer(pod: Arc<Pod>, services: Arc<Services>, stream: UnixStream) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST_BYTES))
        .read_line(&mut line)
        .await?;
    let wire = match serde_json::from_str::<AdminRequest>(&line) {
        Err(e) => Wire::Err {
            code: "bad_request".into(),
            message: format!("unreadable admin request: {e}"),
        },
        Ok(request) => {
            let name = request.name();
            tracing::info!(command = %name, "admin command");
            match execute(&pod, &services, request).await {
                Ok(reply) => Wire::Ok(reply),
                Err(e) => Wire::Err {
                    code: e.code().to_string(),
                    message: e.to_string(),
                },
            }
        }
    };
    let mut bytes = serde_json::to_vec(&wire)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await?;
    Ok(())
}

/// Sends a command to the server holding `data_dir`.
pub async fn send(data_dir: &Path, request: &AdminRequest) -> Result<AdminReply> {
    let path = socket_path(data_dir);
    let stream = UnixStream::connect(&path).await.map_err(|e| {
        Error::internal(format!(
            "the data folder is in use by a running lifeboat, but its admin socket {} does not answer: {e}",
            path.display()
        ))
    })?;
    let (read, mut write) = stream.into_split();
    let mut bytes = serde_json::to_vec(request)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    match serde_json::from_str::<Wire>(&line)
        .map_err(|e| Error::internal(format!("unreadable reply from the server: {e}")))?
    {
        Wire::Ok(reply) => Ok(reply),
        Wire::Err { code, message } => Err(Error::from_code(&code, message)),
    }
}
