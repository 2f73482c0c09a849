//! The `lifeboat` command: `serve` runs the pod; the other subcommands are podmin tools
//! that reach a running server through its admin socket, or open the store themselves
//! when none runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lifeboat::admin::{self, AdminReply, AdminRequest};
use lifeboat::config::{Config, Overrides};
use lifeboat::pod::Pod;
use lifeboat::sealed::{self, KdfParams};
use lifeboat::store::{OpenFailure, Store};
use lifeboat::{server, Error, Result};

/// lifeboat keeps diaspora* accounts alive when their pod dies, and lets them move
/// between pods.
#[derive(Parser)]
#[command(name = "lifeboat", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// TOML configuration file (see lifeboat.example.toml); LIFEBOAT_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data folder (store, held backups, mail outbox, admin socket); overrides server.data_dir.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pod: web pages, federation endpoints and background queues.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (overrides server.listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// The URL peers reach this pod at, e.g. https://pod.example.org; its host is
        /// the host part of local diaspora IDs (overrides server.public_url).
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Verify that every value in the store can be read.
    Check,
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Mail helpers.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// diaspora* archives.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Sealed backups (.lfbk files).
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// Remote people this pod knows.
    #[command(subcommand)]
    People(PeopleCommand),
}

#[derive(Subcommand)]
enum PeopleCommand {
    /// List the remote people this pod knows: diaspora ID, key fingerprint, pod, when
    /// last fetched, and whether they moved or closed their account.
    List,
    /// The archive contacts still waiting to be discovered, by pod: how many, when the
    /// pod is asked next, and why it failed last.
    Queue,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account (its email counts as confirmed). The password is read from
    /// standard input, or prompted for (twice, without echo) on a terminal.
    Add {
        /// The username: 1 to 32 of a-z, 0-9 and _.
        username: String,
        /// The account's email address.
        #[arg(long)]
        email: String,
    },
    /// List accounts: diaspora ID, email and state.
    List,
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Create an account from a diaspora* archive (.json or .json.gz), as diaspora*'s
    /// importer does: a fresh key pair and guid, the archive's identity recorded as the
    /// old one, and the move announced to the pods that knew it. The password is read
    /// from standard input, or prompted for on a terminal.
    Import {
        /// The archive file.
        file: PathBuf,
        /// The new account's username (1 to 32 of a-z, 0-9, _).
        #[arg(long)]
        username: String,
        /// The new account's email (default: the archive's).
        #[arg(long)]
        email: Option<String>,
    },
    /// Write an account's archive (diaspora* archive format 2.0, JSON).
    Export {
        /// The account's username.
        username: String,
        /// Where to write it (owner-only permissions).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum BackupsCommand {
    /// List the backup slots this pod holds for other pods: email, key fingerprint,
    /// confirmed or not, size, sequence, last push (never the content).
    List,
    /// Counts and bytes of the held backups, confirmed and unconfirmed.
    Stats,
    /// Open a sealed backup (.lfbk) offline and write the account archive (JSON). Needs no
    /// data folder and no running server. The pass phrase comes from --passphrase-file,
    /// else LIFEBOAT_PASSPHRASE, else a prompt that does not echo.
    Decrypt {
        /// The .lfbk file.
        file: PathBuf,
        /// Where to write the archive (owner-only permissions); standard output if absent.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Read the pass phrase from this file (one trailing newline is ignored).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Seal an account archive (JSON) into a .lfbk file with a pass phrase, e.g. to carry
    /// it to another pod by hand. The pass phrase is read as for `decrypt`.
    Seal {
        /// The archive JSON file.
        archive: PathBuf,
        /// The .lfbk file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Read the pass phrase from this file (one trailing newline is ignored).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the commented example configuration with every option and its default.
    Example,
    /// Load the configuration (file and environment) and report every problem.
    Check,
}

#[derive(Subcommand)]
enum MailCommand {
    /// Send a test message through the configured transport.
    Test {
        /// Recipient address.
        #[arg(long)]
        to: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("LIFEBOAT_")).collect();
    init_logging(&env);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lifeboat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(env: &BTreeMap<String, String>) {
    let filter = env
        .get("LIFEBOAT_LOG")
        .or_else(|| env.get("LIFEBOAT_SERVER_LOG"))
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn run(cli: Cli, env: BTreeMap<String, String>) -> Result<()> {
    let mut overrides = Overrides {
        data_dir: cli.common.data_dir.clone(),
        ..Default::default()
    };
    if let Command::Serve { listen, public_url } = &cli.command {
        overrides.listen = *listen;
        overrides.public_url = public_url.clone();
    }
    match &cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", Config::example());
            return Ok(());
        }
        Command::Backups(BackupsCommand::Decrypt {
            file,
            out,
            passphrase_file,
        }) => {
            return sealed::decrypt_command(file, out.as_deref(), passphrase_file.as_deref());
        }
        _ => {}
    }
    let loaded = Config::load(cli.common.config.as_deref(), &env, &overrides)?;
    let config = loaded.config;
    match cli.command {
        Command::Serve { .. } => server::serve(config).await,
        Command::Config(ConfigCommand::Example) | Command::Backups(BackupsCommand::Decrypt { .. }) => {
            unreachable!("handled above")
        }
        Command::Backups(BackupsCommand::Seal {
            archive,
            out,
            passphrase_file,
        }) => {
            let params = KdfParams {
                memory_kib: config.backups.kdf_memory_kib,
                time_cost: config.backups.kdf_time_cost,
            };
            sealed::seal_command(&archive, &out, passphrase_file.as_deref(), params)
        }
        Command::Config(ConfigCommand::Check) => {
            println!("configuration OK");
            Ok(())
        }
        Command::Check => print_reply(podmin(config, AdminRequest::Check).await?),
        Command::User(UserCommand::Add { username, email }) => {
            let password = read_new_password()?;
            print_reply(
                podmin(
                    config,
                    AdminRequest::UserAdd {
                        username,
                        email,
                        password,
                    },
                )
                .await?,
            )
        }
        Command::User(UserCommand::List) => print_reply(podmin(config, AdminRequest::UserList).await?),
        Command::Archive(ArchiveCommand::Import { file, username, email }) => {
            let archive =
                std::fs::read(&file).map_err(|e| Error::bad(format!("cannot read {}: {e}", file.display())))?;
            let password = read_new_password()?;
            print_reply(
                podmin(
                    config,
                    AdminRequest::ArchiveImport {
                        archive,
                        username,
                        password,
                        email,
                    },
                )
                .await?,
            )
        }
        Command::Archive(ArchiveCommand::Export { username, out }) => {
            let reply = podmin(config, AdminRequest::ArchiveExport { username }).await?;
            let bytes = reply
                .file
                .ok_or_else(|| Error::internal("the server sent no archive"))?;
            sealed::write_private_file(&out, &bytes)?;
            eprintln!("archive written to {} ({} bytes)", out.display(), bytes.len());
            Ok(())
        }
        Command::Backups(BackupsCommand::List) => print_reply(podmin(config, AdminRequest::BackupsList).await?),
        Command::Backups(BackupsCommand::Stats) => print_reply(podmin(config, AdminRequest::BackupsStats).await?),
        Command::Mail(MailCommand::Test { to }) => print_reply(podmin(config, AdminRequest::MailTest { to }).await?),
        Command::People(PeopleCommand::List) => print_reply(podmin(config, AdminRequest::PeopleList).await?),
        Command::People(PeopleCommand::Queue) => print_reply(podmin(config, AdminRequest::PeopleQueue).await?),
    }
}

/// Runs a podmin command: through the running server's admin socket when one holds
/// the data folder, else on the store opened here.
async fn podmin(config: Config, request: AdminRequest) -> Result<AdminReply> {
    let dir = config.server.data_dir.clone();
    match Store::open_with(
        &dir,
        config.server.store_cache_mib << 20,
        config.server.min_free_mib << 20,
    ) {
        Ok(store) => {
            let pod = Pod::new(config, store)?;
            let services = lifeboat::services::Services::new(&pod);
            let reply = admin::execute(&pod, &services, request).await;
            pod.store.flush()?;
            reply
        }
        Err(OpenFailure::Busy(_)) => admin::send(&dir, &request).await,
        Err(OpenFailure::Other(e)) => Err(e),
    }
}

fn print_reply(reply: AdminReply) -> Result<()> {
    print!("{}", reply.output);
    if reply.file.is_some() {
        return Err(Error::internal("unexpected file in the reply"));
    }
    Ok(())
}

/// Reads a new password: one line from standard input, or twice from a no-echo prompt.
fn read_new_password() -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password again: ")?;
        if first != second {
            return Err(Error::bad("the two passwords differ"));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_string())
}
