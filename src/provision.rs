//! `chatcap provision`: its flags, a progress bar and the closing summary. The work itself
//! is `chatcap_server::provision`; this module only reads the spec, opens the database
//! and writes the output files where the flags say.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chatcap_server::auth::{unix_now, TokenKey};
use chatcap_server::config::ServeConfig;
use chatcap_server::provision::{
    manifest, provision, Manifest, PopulationPlan, PopulationSpec, Progress, Summary,
};
use chatcap_server::store::Schema;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::usage::UsageError;

/// Options of `provision`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("population").required(true).args(["lync2013", "spec"])))]
pub struct ProvisionArgs {
    /// The Lync 2013 user model scaled to this many users (80000 = the pool rating).
    #[arg(long, value_name = "USERS")]
    pub lync2013: Option<u32>,
    /// A population spec (TOML, see docs/PROVISION.md).
    #[arg(long, value_name = "FILE.toml")]
    pub spec: Option<PathBuf>,
    /// Override the spec's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folder of the SQLite databases (and default place of the output files).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Content database URL (sqlite:PATH or postgres://…; overrides --data-dir).
    #[arg(long, env = "CHATCAP_DATABASE")]
    pub database: Option<String>,
    /// Where to write `id,name,token` for every user [default: <data-dir>/tokens.csv].
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Where to write the population manifest (JSON) [default: <data-dir>/population.json].
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Read the population the flags name into a validated plan; errors are usage errors.
pub fn plan_of(args: &ProvisionArgs) -> anyhow::Result<PopulationPlan> {
    let mut spec = match (&args.spec, args.lync2013) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            PopulationSpec::from_toml(&text)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?
        }
        (None, Some(users)) => PopulationSpec::lync2013(users),
        (None, None) => {
            return Err(UsageError("give --lync2013 USERS or --spec FILE".into()).into())
        }
    };
    if let Some(seed) = args.seed {
        spec.seed = seed;
    }
    let origin = args
        .spec
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "--lync2013".into());
    Ok(spec
        .validate()
        .map_err(|e| UsageError(format!("{origin}: {e}")))?)
}

/// Run `chatcap provision`.
pub async fn run(args: ProvisionArgs) -> anyhow::Result<()> {
    let plan = plan_of(&args)?;
    let cfg = ServeConfig {
        data_dir: args.data_dir.clone(),
        database: args.database.clone(),
        ..Default::default()
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let store = chatcap_server::serve::open_store(&cfg.database_url(), Schema::Content).await?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:40}] {human_pos}/{human_len} {per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let on_progress = |p: Progress| match p {
        Progress::Stage { name, total } => {
            bar.set_prefix(name);
            bar.set_length(total);
            bar.set_position(0);
        }
        Progress::Advance(n) => bar.inc(n),
    };
    let done = provision(&store, &plan, &on_progress).await;
    bar.finish_and_clear();
    let done = done?;

    let key = TokenKey::load(&store).await?;
    store.close().await;
    let expires = unix_now() + (plan.spec.users.token_ttl_hours * 3600) as i64;
    let tokens = out_path(&args.tokens, &args.data_dir, "tokens.csv");
    manifest::write_tokens(&tokens, &plan, &done, &key, expires)?;
    let manifest_path = out_path(&args.manifest, &args.data_dir, "population.json");
    Manifest::new(&plan, &done).write(&manifest_path)?;

    print_summary(&done.summary, &cfg.database_url());
    println!("tokens:   {}", tokens.display());
    println!("manifest: {}", manifest_path.display());
    Ok(())
}

fn out_path(given: &Option<PathBuf>, data_dir: &Path, default: &str) -> PathBuf {
    given.clone().unwrap_or_else(|| data_dir.join(default))
}

/// The closing summary: users, rooms per class, memberships, seconds.
pub fn print_summary(s: &Summary, database: &str) {
    println!(
        "provisioned {} users (+{} admins), {} categories, {} rooms, {} memberships ({} role grants) in {:.1} s on {}",
        s.users,
        s.admins,
        s.categories,
        s.rooms(),
        s.memberships,
        s.grants,
        s.elapsed.as_secs_f64(),
        redact(database),
    );
    println!(
        "  {:<10} {:>8} {:>11} {:>6} {:>13} {:>12}",
        "class", "rooms", "auditorium", "open", "members/room", "memberships"
    );
    for c in &s.classes {
        let size = if c.size_min == c.size_max {
            c.size_min.to_string()
        } else {
            format!("{}–{}", c.size_min, c.size_max)
        };
        println!(
            "  {:<10} {:>8} {:>11} {:>6} {:>13} {:>12}",
            c.class, c.rooms, c.auditorium, c.open, size, c.memberships
        );
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
