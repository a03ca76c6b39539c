//! The driver: starts the cluster and the users, waits until every user is logged in and
//! watching, runs each phase while the users chat, lets the phase's messages arrive, and
//! hands the ledger to the checker. Everything it starts ends with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use longlink_client::{ClientConfig, Transport};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::cluster::{Cluster, Restart, log_warnings};
use crate::ledger::Ledger;
use crate::user::{self, Mode, Plan, User};
use crate::{Options, Phase, Report};

/// How long every user may take to log in and watch.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// Users connecting (and logging in) at once.
const CONNECTING: usize = 32;

/// A directory for the run, removed at the end unless the caller named it.
struct RunDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs the soak: the cluster, the users, every phase in `opts.phases`; the checker's
/// report. Must be called from the task that owns the runtime's main thread (the children's
/// death signal is tied to the thread that spawns them).
pub async fn run(opts: &Options) -> Result<Report> {
    let dir = match &opts.dir {
        Some(path) => RunDir {
            path: path.clone(),
            keep: true,
        },
        None => {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            let n = RUNS.fetch_add(1, Ordering::Relaxed);
            let name = format!("longlink-soak-{}-{n}", std::process::id());
            RunDir {
                path: std::env::temp_dir().join(name),
                keep: false,
            }
        }
    };
    std::fs::create_dir_all(&dir.path).context("the run's directory")?;
    let mut cluster = Cluster::start(opts, &dir.path).await?;
    let ledger = Arc::new(Ledger::default());
    let (mode, rx) = watch::channel(Mode::Quiet);
    let mut users = start_users(opts, &cluster, &ledger, &rx);
    let outcome = drive(opts, &mut cluster, &ledger, &mode).await;
    let _ = mode.send(Mode::Stop);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while users.join_next().await.is_some() {}
    })
    .await;
    users.abort_all();
    let warnings = log_warnings(&dir.path);
    if !warnings.is_empty() {
        eprintln!(
            "{} warnings and errors in the nodes' logs; the first 20:",
            warnings.len()
        );
        for w in warnings.iter().take(20) {
            eprintln!("  {w}");
        }
    }
    let (labels, restarts) = outcome?;
    let book = ledger.lock();
    if !book.failures.is_empty() {
        eprintln!("client failures (first 10):");
        for f in book.failures.iter().take(10) {
            eprintln!("  {f}");
        }
    }
    Ok(Report::new(&book, &labels, &restarts))
}

fn start_users(
    opts: &Options,
    cluster: &Cluster,
    ledger: &Arc<Ledger>,
    mode: &watch::Receiver<Mode>,
) -> JoinSet<()> {
    let uids: Vec<u64> = (0..opts.clients as u64).map(|i| 1000 + i).collect();
    let plan = Arc::new(Plan {
        uids: uids.clone(),
        rate: opts.rate,
        private_share: opts.private_share,
        secret: opts.secret.clone(),
        seed: opts.seed,
    });
    let connects = Arc::new(Semaphore::new(CONNECTING));
    let mut set = JoinSet::new();
    for (i, uid) in uids.into_iter().enumerate() {
        let slot = i % cluster.gates();
        let transport = if (i / cluster.gates()).is_multiple_of(2) {
            Transport::Tcp
        } else {
            Transport::Ws
        };
        let addr = cluster.addr(slot, transport).to_string();
        let others = (1..cluster.gates())
            .map(|k| {
                cluster
                    .addr((slot + k) % cluster.gates(), transport)
                    .to_string()
            })
            .collect();
        let config = match transport {
            Transport::Ws => ClientConfig::ws(addr),
            _ => ClientConfig::tcp(addr),
        }
        .with_encoding(opts.encoding);
        let room = 1 + (i % opts.rooms.max(1)) as u64;
        *ledger.lock().members.entry(room).or_default() += 1;
        let user = User {
            uid,
            room,
            config,
            others,
        };
        set.spawn(user::run(
            user,
            Arc::clone(&plan),
            Arc::clone(ledger),
            mode.clone(),
            Arc::clone(&connects),
        ));
    }
    set
}

/// The phases' labels (`None` for the start) and restarts.
type Outcome = (Vec<Option<Phase>>, Vec<Vec<Restart>>);

async fn drive(
    opts: &Options,
    cluster: &mut Cluster,
    ledger: &Ledger,
    mode: &watch::Sender<Mode>,
) -> Result<Outcome> {
    let started = Instant::now();
    while !all_ready(opts, ledger, started)? {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "soak: {} users ready in {:.1} s",
        opts.clients,
        started.elapsed().as_secs_f64()
    );
    let mut labels = vec![None];
    let mut restarts = vec![Vec::new()];
    for (i, &phase) in opts.phases.iter().enumerate() {
        ledger.lock().phase = i + 1;
        labels.push(Some(phase));
        let t0 = Instant::now();
        ledger.chatting(true);
        let _ = mode.send(Mode::Chat);
        let done = act(opts, cluster, phase).await?;
        ledger.chatting(false);
        let _ = mode.send(Mode::Quiet);
        let open = settle(opts, ledger, i + 1).await;
        eprintln!(
            "soak: phase {} done in {:.1} s ({open} messages unaccounted for)",
            phase.name(),
            t0.elapsed().as_secs_f64()
        );
        restarts.push(done);
    }
    Ok((labels, restarts))
}

/// Whether every user is logged in and watching; an error once one failed or
/// `READY_LIMIT` passed.
fn all_ready(opts: &Options, ledger: &Ledger, started: Instant) -> Result<bool> {
    let book = ledger.lock();
    if book.ready == opts.clients {
        return Ok(true);
    }
    if !book.failures.is_empty() || started.elapsed() > READY_LIMIT {
        bail!(
            "{} of {} users ready after {:?}; failures: {:?}",
            book.ready,
            opts.clients,
            started.elapsed(),
            book.failures.iter().take(5).collect::<Vec<_>>()
        );
    }
    Ok(false)
}

/// What a phase does to the cluster while the users chat for `phase_time`.
async fn act(opts: &Options, cluster: &mut Cluster, phase: Phase) -> Result<Vec<Restart>> {
    let t = opts.phase_time;
    let mut done = Vec::new();
    match phase {
        Phase::Baseline => tokio::time::sleep(t).await,
        Phase::Cuts => {
            let (min, max) = opts.cut_bytes;
            cluster.random_cuts(Some((opts.seed, min, max)));
            cluster.cut_all();
            tokio::time::sleep(t).await;
            if !opts.cuts_throughout {
                cluster.random_cuts(None);
                cluster.cut_all();
            }
        }
        Phase::Gates => {
            let n = cluster.gates();
            for slot in 0..n {
                tokio::time::sleep(t / (n as u32 + 1)).await;
                done.push(cluster.restart_gate(slot).await?);
            }
            tokio::time::sleep(t / (n as u32 + 1)).await;
        }
        Phase::Chats => {
            let n = cluster.chat_nodes();
            for i in 0..n {
                tokio::time::sleep(t / (n as u32 + 1)).await;
                done.push(cluster.restart_chat(i).await?);
            }
            tokio::time::sleep(t / (n as u32 + 1)).await;
        }
        Phase::Nats => {
            tokio::time::sleep(t / 3).await;
            let t0 = Instant::now();
            cluster.nats.kill().await;
            tokio::time::sleep(opts.nats_outage).await;
            cluster.nats.restart().await?;
            done.push(Restart {
                old: "nats".into(),
                start: t0.elapsed(),
                stop: Duration::ZERO,
                exit: "killed".into(),
            });
            tokio::time::sleep(t * 2 / 3).await;
        }
    }
    Ok(done)
}

/// Waits until every message of `phase` is received or refused, at most `opts.settle`;
/// how many are still unaccounted for.
async fn settle(opts: &Options, ledger: &Ledger, phase: usize) -> u64 {
    let deadline = Instant::now() + opts.settle;
    loop {
        let open = ledger.lock().outstanding(phase);
        if open == 0 || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
