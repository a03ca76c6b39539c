//! Black-box tests of modules as a leaf user knows them: `OnInit` / `OnDestroy` order through
//! the app, chanrpc-style casts and calls (with timeouts), `AsynCall`-style calls whose callback
//! runs on the caller, timers, cron, `Go` / linear `Go`, panics that do not kill a module, and
//! the shutdown drain.
//!
//! Timing is only used for generous upper bounds (as timeouts) and for "it did not happen"
//! checks that are closed by a later event which must come after it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use longlink::app::AppError;
use longlink::module::CallError;
use longlink::module::{ModuleError, RunningModule};
use longlink::timer::{CronExpr, TimerId};
use longlink::{App, Ctx, Module, ModuleRef};
use tokio::sync::oneshot;
use tokio::task::Id as TaskId;
use tokio::time::Instant;

/// A generous bound: nothing here should come anywhere near it.
const LONG: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Log = Arc<Mutex<Vec<String>>>;

fn log_push(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn snapshot(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// The state most tests use.
#[derive(Debug, Default)]
struct St {
    log: Vec<String>,
    n: u32,
    m: u32,
    samples: Vec<u32>,
    id: Option<TimerId>,
    /// The id of the module's own task, recorded by its init hook.
    task: Option<TaskId>,
}

/// A module that records the id of its task in `on_init`.
fn st_module(name: &str) -> Module<St> {
    Module::new(name, St::default()).on_init(|ctx| ctx.task = tokio::task::try_id())
}

async fn start(module: Module<St>) -> (ModuleRef<St>, RunningModule) {
    let handle = module.module_ref();
    let running = module.start().await.expect("module starts");
    (handle, running)
}

/// Whether the current code runs on the module's own task.
fn on_task(ctx: &Ctx<St>) -> bool {
    ctx.task.is_some() && tokio::task::try_id() == ctx.task
}

/// Reads the module's state through a call.
async fn read<S: Send + 'static, R: Send + 'static>(
    m: &ModuleRef<S>,
    f: impl FnOnce(&mut Ctx<S>) -> R + Send + 'static,
) -> R {
    m.call(LONG, f).await.expect("module answers the call")
}

/// Polls the module's state until `pred` holds; fails after [`LONG`].
async fn eventually<S: Send + 'static>(
    m: &ModuleRef<S>,
    pred: impl Fn(&S) -> bool + Send + Sync + Clone + 'static,
) {
    let deadline = Instant::now() + LONG;
    loop {
        let p = pred.clone();
        if read(m, move |ctx| p(ctx.state())).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {LONG:?}"
        );
        tokio::time::sleep(ms(2)).await;
    }
}

/// A function that blocks the thread it runs on until released (or [`LONG`] passes), and says
/// when it has begun.
fn blocking_job() -> (
    impl FnOnce() + Send + 'static,
    oneshot::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let job = move || {
        let _ = started_tx.send(());
        let _ = release_rx.recv_timeout(LONG);
    };
    (job, started_rx, release_tx)
}

/// Blocks the module's task inside a handler; returns once the handler is running.
async fn block_module<S: Send + 'static>(m: &ModuleRef<S>) -> std::sync::mpsc::Sender<()> {
    let (job, started, release) = blocking_job();
    m.cast(move |_| job()).await.expect("cast accepted");
    started.await.expect("blocking handler started");
    release
}

/// A module whose init and destroy hooks write `init <name>` / `destroy <name>` to `log`.
fn logged(name: &str, log: &Log) -> Module<Vec<u32>> {
    let (on_init, on_destroy) = (log.clone(), log.clone());
    Module::new(name, Vec::new())
        .on_init(move |ctx| log_push(&on_init, format!("init {}", ctx.name())))
        .on_destroy(move |ctx| log_push(&on_destroy, format!("destroy {}", ctx.name())))
}

/// Asserts that `log` is `init x1 .. init xn` followed by `destroy xn .. destroy x1`.
fn assert_nested(log: &[String]) {
    let inits: Vec<&str> = log.iter().filter_map(|e| e.strip_prefix("init ")).collect();
    let mut expected: Vec<String> = inits.iter().map(|n| format!("init {n}")).collect();
    expected.extend(inits.iter().rev().map(|n| format!("destroy {n}")));
    assert_eq!(
        log,
        expected.as_slice(),
        "init in order, destroy in reverse"
    );
}

// ---------------------------------------------------------------------------------------------
// 1-3. The app: order, early stop, init panics.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_inits_in_registration_order_and_destroys_in_reverse() {
    let log = Log::default();
    let (a, b, c) = (logged("a", &log), logged("b", &log), logged("c", &log));
    let refs = [a.module_ref(), b.module_ref(), c.module_ref()];
    let app = App::new()
        .module(a)
        .module(b)
        .module(c)
        .handle_signals(false)
        .shutdown_timeout(LONG);
    let stop = app.stop_handle();
    let run = tokio::spawn(app.run());

    // Every module serves while the app runs.
    for (i, r) in refs.iter().enumerate() {
        r.cast(move |ctx| ctx.push(i as u32)).await.unwrap();
        assert_eq!(read(r, |ctx| ctx.clone()).await, vec![i as u32]);
    }
    assert_eq!(snapshot(&log), ["init a", "init b", "init c"]);
    assert!(!stop.is_stopped());

    stop.stop();
    assert!(stop.is_stopped());
    tokio::time::timeout(LONG, run)
        .await
        .expect("run returns after stop")
        .expect("run task did not panic")
        .expect("run succeeds");
    assert_eq!(
        snapshot(&log),
        [
            "init a",
            "init b",
            "init c",
            "destroy c",
            "destroy b",
            "destroy a"
        ]
    );
    for r in &refs {
        let res = r.call(LONG, |_| ()).await;
        assert!(
            matches!(res, Err(CallError::Closed | CallError::NoReply)),
            "call after the app stopped: {res:?}"
        );
    }
}

/// The gate-last rule: a module destroyed first can still reach the ones registered before
/// it (leaf: the gate's CloseAgent reaches the game module during shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_module_destroyed_first_still_reaches_earlier_modules() {
    let log = Log::default();
    let game_log = log.clone();
    let game = Module::new("game", Vec::<&'static str>::new())
        .on_destroy(move |ctx| log_push(&game_log, format!("game destroyed with {:?}", **ctx)));
    let game_ref = game.module_ref();
    let gate_log = log.clone();
    let gate = Module::new("gate", ()).on_destroy(move |_| {
        let sent = game_ref.try_cast(|ctx| ctx.push("close agent"));
        log_push(&gate_log, format!("gate destroyed, sent: {sent:?}"));
    });
    let app = App::new()
        .module(game)
        .module(gate)
        .handle_signals(false)
        .shutdown_timeout(LONG);
    app.stop_handle().stop();
    tokio::time::timeout(LONG, app.run())
        .await
        .expect("run returns")
        .expect("run succeeds");
    assert_eq!(
        snapshot(&log),
        [
            "gate destroyed, sent: Ok(())",
            "game destroyed with [\"close agent\"]"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_stop_before_run_is_not_lost() {
    let log = Log::default();
    let app = App::new()
        .module(logged("a", &log))
        .module(logged("b", &log))
        .handle_signals(false)
        .shutdown_timeout(LONG);
    let stop = app.stop_handle();
    stop.stop();
    stop.stop(); // idempotent
    tokio::time::timeout(LONG, app.run())
        .await
        .expect("an early stop is not lost: run returns")
        .expect("run succeeds");
    // Whatever was initialised was destroyed, in reverse order.
    assert_nested(&snapshot(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_stop_from_inside_on_init_is_not_lost() {
    let log = Log::default();
    let app = App::new().handle_signals(false).shutdown_timeout(LONG);
    let stop = app.stop_handle();
    let b_log = log.clone();
    let b = Module::new("b", ())
        .on_init(move |_| {
            log_push(&b_log, "init b");
            stop.stop();
        })
        .on_destroy({
            let log = log.clone();
            move |_| log_push(&log, "destroy b")
        });
    let app = app
        .module(logged("a", &log))
        .module(b)
        .module(logged("c", &log));
    tokio::time::timeout(LONG, app.run())
        .await
        .expect("a stop during init is not lost: run returns")
        .expect("run succeeds");
    let log = snapshot(&log);
    assert_eq!(&log[..2], ["init a", "init b"]);
    assert_nested(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_init_panic_is_an_error_and_earlier_modules_are_destroyed() {
    let log = Log::default();
    let b_log = log.clone();
    let b = Module::new("b", ())
        .on_init(move |_| {
            log_push(&b_log, "init b");
            panic!("boom in init");
        })
        .on_destroy({
            let log = log.clone();
            move |_| log_push(&log, "destroy b")
        });
    let app = App::new()
        .module(logged("a", &log))
        .module(b)
        .module(logged("c", &log))
        .handle_signals(false)
        .shutdown_timeout(LONG);
    let err = tokio::time::timeout(LONG, app.run())
        .await
        .expect("run returns")
        .expect_err("an init panic fails the app");
    match err {
        AppError::Module(ModuleError::InitPanicked { module, panic }) => {
            assert_eq!(module, "b");
            assert!(panic.contains("boom in init"), "panic message: {panic}");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    let log: Vec<String> = snapshot(&log)
        .into_iter()
        .filter(|e| e != "destroy b") // not specified either way for the failed module
        .collect();
    assert_eq!(log, ["init a", "init b", "destroy a"], "c never starts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn module_start_reports_an_init_panic() {
    let err = Module::new("x", ())
        .on_init(|_| panic!("init exploded"))
        .start()
        .await
        .expect_err("init panicked");
    let ModuleError::InitPanicked { module, panic } = err;
    assert_eq!(module, "x");
    assert!(panic.contains("init exploded"), "panic message: {panic}");
}

// ---------------------------------------------------------------------------------------------
// 4. cast / try_cast / call.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cast_try_cast_and_call_run_in_order_on_the_module_task() {
    let (r, running) = start(st_module("counter")).await;
    assert_eq!(r.name(), "counter");
    for i in 1..=100u32 {
        r.cast(move |ctx| ctx.samples.push(i)).await.unwrap();
    }
    r.try_cast(|ctx| ctx.samples.push(101)).unwrap();
    let (samples, on) = read(&r, |ctx| (ctx.samples.clone(), on_task(ctx))).await;
    assert_eq!(samples, (1..=101).collect::<Vec<_>>());
    assert!(on, "calls run on the module's task");

    // A ModuleRef taken from a Ctx reaches the same module.
    let again = read(&r, |ctx| ctx.module_ref()).await;
    assert_eq!(read(&again, |ctx| ctx.samples.len()).await, 101);
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_to_a_stopped_module_is_closed() {
    let (r, running) = start(st_module("gone")).await;
    running.stop(LONG).await;
    let res = r.call(LONG, |ctx| ctx.n).await;
    assert!(
        matches!(res, Err(CallError::Closed | CallError::NoReply)),
        "call: {res:?}"
    );
    assert_eq!(r.cast(|ctx| ctx.n += 1).await, Err(CallError::Closed));
    assert_eq!(r.try_cast(|ctx| ctx.n += 1), Err(CallError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_to_a_busy_module_times_out() {
    let (r, running) = start(st_module("busy")).await;
    let release = block_module(&r).await;
    assert_eq!(r.call(ms(20), |ctx| ctx.n).await, Err(CallError::Timeout));
    release.send(()).unwrap();
    // The module recovers and answers again.
    assert_eq!(r.call(LONG, |ctx| ctx.n).await, Ok(0));
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn try_cast_on_a_full_mailbox_is_full() {
    let (r, running) = start(Module::with_capacity("small", St::default(), 1)).await;
    let release = block_module(&r).await;
    assert_eq!(r.mailbox_depth(), 0);
    r.try_cast(|ctx| ctx.n += 1).expect("one slot free");
    assert_eq!(r.mailbox_depth(), 1);
    assert_eq!(r.try_cast(|ctx| ctx.n += 100), Err(CallError::Full));

    // A waiting cast is not lost: it goes in once there is room.
    let r2 = r.clone();
    let waiting = tokio::spawn(async move { r2.cast(|ctx| ctx.n += 10).await });
    release.send(()).unwrap();
    waiting.await.unwrap().expect("waiting cast accepted");
    assert_eq!(
        read(&r, |ctx| ctx.n).await,
        11,
        "the rejected cast never ran"
    );
    running.stop(LONG).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Call with callback (leaf's AsynCall).
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctx_call_callback_runs_on_the_callers_task() {
    let (a, run_a) = start(st_module("a")).await;
    let (b, run_b) = start(st_module("b")).await;
    b.cast(|ctx| ctx.n = 21).await.unwrap();

    let target = b.clone();
    a.cast(move |ctx| {
        ctx.call(
            &target,
            LONG,
            |b| (b.n * 2, on_task(b)),
            |a, res| {
                let on = on_task(a);
                a.log.push(format!("{res:?} cb_on_a={on}"));
                if let Ok((v, _)) = res {
                    a.n = v;
                }
            },
        )
    })
    .await
    .unwrap();
    eventually(&a, |s| !s.log.is_empty()).await;
    let (log, n) = read(&a, |ctx| (ctx.log.clone(), ctx.n)).await;
    assert_eq!(log, ["Ok((42, true)) cb_on_a=true"]);
    assert_eq!(n, 42, "the callback mutated A's state");
    run_a.stop(LONG).await;
    run_b.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctx_call_callback_gets_timeout_and_closed() {
    let (a, run_a) = start(st_module("a")).await;
    let (b, run_b) = start(st_module("b")).await;
    let (c, run_c) = start(st_module("c")).await;
    run_c.stop(LONG).await;

    let release = block_module(&b).await;
    let (busy, gone) = (b.clone(), c.clone());
    a.cast(move |ctx| {
        ctx.call(
            &busy,
            ms(20),
            |b| b.n,
            |a, res| a.log.push(format!("busy: {res:?}")),
        );
        ctx.call(
            &gone,
            LONG,
            |c| c.n,
            |a, res| a.log.push(format!("gone: {res:?}")),
        );
    })
    .await
    .unwrap();
    eventually(&a, |s| s.log.len() == 2).await;
    release.send(()).unwrap();
    let mut log = read(&a, |ctx| ctx.log.clone()).await;
    log.sort();
    assert_eq!(log[0], "busy: Err(Timeout)");
    assert!(
        log[1] == "gone: Err(Closed)" || log[1] == "gone: Err(NoReply)",
        "{log:?}"
    );
    run_a.stop(LONG).await;
    run_b.stop(LONG).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Timers.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_fires_once_on_the_module_task() {
    let (r, running) = start(st_module("t")).await;
    let count = read(&r, |ctx| {
        let id = ctx.after(ms(10), |ctx| {
            let on = on_task(ctx);
            ctx.log.push(format!("once on_task={on}"));
        });
        ctx.id = Some(id);
        ctx.after(ms(40), |ctx| ctx.log.push("later".into()));
        ctx.timer_count()
    })
    .await;
    assert_eq!(count, 2);
    eventually(&r, |s| s.log.iter().any(|e| e == "later")).await;
    let (log, cancelled, left) = read(&r, |ctx| {
        let id = ctx.id.unwrap();
        (ctx.log.clone(), ctx.cancel(id), ctx.timer_count())
    })
    .await;
    assert_eq!(log, ["once on_task=true", "later"]);
    assert!(!cancelled, "cancel of a fired timer returns false");
    assert_eq!(left, 0);
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_set_in_on_init_fires() {
    let m = Module::new("t", St::default()).on_init(|ctx| {
        ctx.task = tokio::task::try_id();
        ctx.after(ms(5), |ctx| {
            let on = on_task(ctx);
            ctx.log.push(format!("init timer on_task={on}"));
        });
    });
    let (r, running) = start(m).await;
    eventually(&r, |s| !s.log.is_empty()).await;
    assert_eq!(
        read(&r, |ctx| ctx.log.clone()).await,
        ["init timer on_task=true"]
    );
    running.stop(LONG).await;
}

/// Leaf's skeleton `select`s over its call channel and its timer channel, so a steady stream
/// of calls cannot hold a due timer back for long. Here 200 queued jobs of 1 ms each keep the
/// mailbox non-empty for ~200 ms; a timer due after 5 ms must get its turn well before the
/// queue is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn due_timer_is_not_starved_by_a_busy_mailbox() {
    let (r, running) = start(st_module("busy")).await;
    let release = block_module(&r).await;
    r.cast(|ctx| {
        ctx.after(ms(5), |ctx| {
            let n = ctx.n;
            ctx.samples.push(n);
        });
    })
    .await
    .unwrap();
    for _ in 0..200 {
        r.cast(|ctx| {
            std::thread::sleep(ms(1));
            ctx.n += 1;
        })
        .await
        .unwrap();
    }
    // The timer becomes due while the module is still blocked.
    tokio::time::sleep(ms(20)).await;
    release.send(()).unwrap();
    eventually(&r, |s| s.n == 200 && !s.samples.is_empty()).await;
    let seen = read(&r, |ctx| ctx.samples.clone()).await;
    assert!(
        seen[0] < 200,
        "the due timer ran only after all {} queued jobs",
        seen[0]
    );
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_repeats_until_cancelled_in_its_own_callback() {
    let (r, running) = start(st_module("t")).await;
    read(&r, |ctx| {
        let id = ctx.every(ms(2), |ctx| {
            ctx.n += 1;
            if ctx.n == 3 {
                let id = ctx.id.unwrap();
                let was = ctx.cancel(id);
                ctx.log.push(format!("cancel={was}"));
                // Anything fired after this is a bug; this later timer closes the window.
                ctx.after(ms(30), |ctx| ctx.log.push("later".into()));
            }
        });
        ctx.id = Some(id);
    })
    .await;
    eventually(&r, |s| s.log.iter().any(|e| e == "later")).await;
    let (n, log, left, again) = read(&r, |ctx| {
        let id = ctx.id.unwrap();
        (ctx.n, ctx.log.clone(), ctx.timer_count(), ctx.cancel(id))
    })
    .await;
    assert_eq!(n, 3, "fired exactly three times");
    assert_eq!(log, ["cancel=true", "later"]);
    assert_eq!(left, 0);
    assert!(!again, "second cancel returns false");
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_timer_never_fires_even_when_already_due() {
    let (r, running) = start(st_module("t")).await;
    let (first, second, due, count) = read(&r, |ctx| {
        let id = ctx.after(ms(20), |ctx| ctx.log.push("cancelled".into()));
        let first = ctx.cancel(id);
        let second = ctx.cancel(id);
        // Due while this handler still runs, cancelled before the loop can fire it.
        let soon = ctx.after(ms(1), |ctx| ctx.log.push("cancelled while due".into()));
        std::thread::sleep(ms(10));
        let due = ctx.cancel(soon);
        ctx.after(ms(40), |ctx| ctx.log.push("later".into()));
        (first, second, due, ctx.timer_count())
    })
    .await;
    assert!(first, "cancel of a set timer returns true");
    assert!(!second, "cancel of a cancelled timer returns false");
    assert!(due, "cancel of a due timer returns true");
    assert_eq!(count, 1);
    eventually(&r, |s| !s.log.is_empty()).await;
    assert_eq!(read(&r, |ctx| ctx.log.clone()).await, ["later"]);
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_callbacks_see_message_mutations_in_order() {
    let (r, running) = start(st_module("t")).await;
    // A timer set inside a handler runs after the handler, never in the middle of it.
    read(&r, |ctx| {
        ctx.n = 1;
        ctx.after(Duration::ZERO, |ctx| {
            let seen = ctx.n;
            ctx.log.push(format!("timer saw {seen}"));
        });
        ctx.n = 2;
    })
    .await;
    eventually(&r, |s| !s.log.is_empty()).await;
    assert_eq!(read(&r, |ctx| ctx.log.clone()).await, ["timer saw 2"]);

    // A sampling timer interleaves with messages and sees their effects in order.
    read(&r, |ctx| {
        ctx.m = 0;
        let id = ctx.every(ms(1), |ctx| {
            let m = ctx.m;
            ctx.samples.push(m);
        });
        ctx.id = Some(id);
    })
    .await;
    for _ in 0..50 {
        r.cast(|ctx| ctx.m += 1).await.unwrap();
        tokio::task::yield_now().await;
    }
    eventually(&r, |s| s.samples.last() == Some(&50)).await;
    let samples = read(&r, |ctx| {
        let id = ctx.id.unwrap();
        ctx.cancel(id);
        ctx.samples.clone()
    })
    .await;
    assert!(
        samples.windows(2).all(|w| w[0] <= w[1]),
        "samples never go back: {samples:?}"
    );
    running.stop(LONG).await;
}

// ---------------------------------------------------------------------------------------------
// 7. Cron.
// ---------------------------------------------------------------------------------------------

#[test]
fn cron_expr_parse_accepts_5_and_6_fields_only() {
    assert!(CronExpr::parse("* * * * * *").is_ok());
    assert!(CronExpr::parse("0 * * * *").is_ok());
    assert!(CronExpr::parse("*/5 1-3,7 * * *").is_ok());
    assert!(CronExpr::parse("* * * *").is_err());
    assert!(CronExpr::parse("* * * * * * *").is_err());
    assert!(CronExpr::parse("60 * * * * *").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_every_second_fires_repeatedly_and_can_cancel_itself() {
    let (r, running) = start(st_module("cron")).await;
    let (never, a, b, count) = read(&r, |ctx| {
        // 30 February never comes: no timer.
        let never = ctx.cron(CronExpr::parse("0 0 0 30 2 *").unwrap(), |ctx| {
            ctx.log.push("impossible".into())
        });
        let every_second = CronExpr::parse("* * * * * *").unwrap();
        let a = ctx.cron(every_second.clone(), |ctx| {
            ctx.n += 1;
            let on = on_task(ctx);
            if ctx.n == 2 {
                ctx.log.push(format!("a twice on_task={on}"));
                // b fires at the same second boundaries; well after a's second run, b would
                // have run twice had it not cancelled itself.
                ctx.after(ms(200), |ctx| {
                    let m = ctx.m;
                    ctx.log.push(format!("b fired {m}"));
                });
            }
        });
        let b = ctx.cron(every_second, |ctx| {
            ctx.m += 1;
            let id = ctx.id.unwrap();
            let was = ctx.cancel(id);
            ctx.log.push(format!("b cancel={was}"));
        });
        ctx.id = b;
        (never.is_none(), a, b.is_some(), ctx.timer_count())
    })
    .await;
    assert!(never, "a cron that never matches sets no timer");
    assert!(a.is_some() && b);
    assert_eq!(count, 2);

    eventually(&r, |s| s.log.iter().any(|e| e.starts_with("b fired"))).await;
    let (n, log, left) = read(&r, move |ctx| {
        let cancelled = ctx.cancel(a.unwrap());
        (ctx.n, ctx.log.clone(), (ctx.timer_count(), cancelled))
    })
    .await;
    assert!(n >= 2, "fired {n} times");
    assert_eq!(log, ["b cancel=true", "a twice on_task=true", "b fired 1"]);
    assert_eq!(left, (0, true));
    running.stop(LONG).await;
}

// ---------------------------------------------------------------------------------------------
// 8. go, go_linear, spawn.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_runs_off_the_module_task_and_calls_back_on_it() {
    let (r, running) = start(st_module("go")).await;
    let (job, started, release) = blocking_job();
    r.cast(move |ctx| {
        ctx.go(
            move || {
                let id = tokio::task::try_id();
                job();
                (id, 7u32)
            },
            |ctx, (job_task, v)| {
                let off = job_task != ctx.task;
                let on = on_task(ctx);
                ctx.n = v;
                ctx.log
                    .push(format!("cb v={v} job_off_task={off} cb_on_task={on}"));
            },
        )
    })
    .await
    .unwrap();
    started.await.unwrap();
    // The module keeps serving while the job blocks.
    assert_eq!(read(&r, |ctx| ctx.log.len()).await, 0);
    release.send(()).unwrap();
    eventually(&r, |s| !s.log.is_empty()).await;
    let (log, n) = read(&r, |ctx| (ctx.log.clone(), ctx.n)).await;
    assert_eq!(log, ["cb v=7 job_off_task=true cb_on_task=true"]);
    assert_eq!(n, 7);
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_linear_runs_jobs_one_at_a_time_in_order() {
    let (r, running) = start(st_module("linear")).await;
    let exec = Log::default();
    let jobs = exec.clone();
    read(&r, move |ctx| {
        let linear = ctx.linear();
        for (i, delay) in [(1u32, 50u64), (2, 0), (3, 10), (4, 0)] {
            let exec = jobs.clone();
            ctx.go_linear(
                &linear,
                move || {
                    log_push(&exec, format!("start {i}"));
                    std::thread::sleep(ms(delay));
                    log_push(&exec, format!("end {i}"));
                    i
                },
                |ctx, i| {
                    let on = on_task(ctx);
                    ctx.log.push(format!("cb {i} on_task={on}"));
                },
            );
        }
    })
    .await;
    eventually(&r, |s| s.log.len() == 4).await;
    assert_eq!(
        snapshot(&exec),
        [
            "start 1", "end 1", "start 2", "end 2", "start 3", "end 3", "start 4", "end 4"
        ]
    );
    assert_eq!(
        read(&r, |ctx| ctx.log.clone()).await,
        [
            "cb 1 on_task=true",
            "cb 2 on_task=true",
            "cb 3 on_task=true",
            "cb 4 on_task=true"
        ]
    );
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawn_runs_a_future_and_calls_back_on_the_module_task() {
    let (r, running) = start(st_module("spawn")).await;
    r.cast(|ctx| {
        ctx.spawn(
            async {
                tokio::time::sleep(ms(10)).await;
                5u32
            },
            |ctx, v| {
                let on = on_task(ctx);
                ctx.n = v;
                ctx.log.push(format!("cb v={v} on_task={on}"));
            },
        )
    })
    .await
    .unwrap();
    eventually(&r, |s| !s.log.is_empty()).await;
    assert_eq!(
        read(&r, |ctx| ctx.log.clone()).await,
        ["cb v=5 on_task=true"]
    );
    assert_eq!(read(&r, |ctx| ctx.n).await, 5);
    running.stop(LONG).await;
}

// ---------------------------------------------------------------------------------------------
// 9. Panics are caught; the module keeps serving with its state intact.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panic_in_a_cast_or_call_is_caught() {
    let (r, running) = start(st_module("p")).await;
    r.cast(|ctx| ctx.n = 10).await.unwrap();
    r.cast(|_| panic!("cast boom")).await.unwrap();
    assert_eq!(read(&r, |ctx| ctx.n).await, 10);
    let res: Result<u32, CallError> = r.call(LONG, |_| panic!("call boom")).await;
    assert_eq!(res, Err(CallError::NoReply));
    r.cast(|ctx| ctx.n += 1).await.unwrap();
    assert_eq!(read(&r, |ctx| (ctx.n, on_task(ctx))).await, (11, true));
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panic_in_timer_callbacks_is_caught() {
    let (r, running) = start(st_module("p")).await;
    read(&r, |ctx| {
        ctx.m = 10;
        ctx.after(ms(1), |_| panic!("timer boom"));
        // A repeating timer survives its own panics.
        let id = ctx.every(ms(2), |ctx| {
            ctx.n += 1;
            if ctx.n < 3 {
                panic!("every boom {}", ctx.n);
            }
            let id = ctx.id.unwrap();
            ctx.cancel(id);
            ctx.log.push("every done".into());
        });
        ctx.id = Some(id);
    })
    .await;
    eventually(&r, |s| !s.log.is_empty()).await;
    let (n, m, log, left) =
        read(&r, |ctx| (ctx.n, ctx.m, ctx.log.clone(), ctx.timer_count())).await;
    assert_eq!((n, m), (3, 10));
    assert_eq!(log, ["every done"]);
    assert_eq!(left, 0);
    running.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panic_in_a_go_job_or_callback_is_caught() {
    let (r, running) = start(st_module("p")).await;
    r.cast(|ctx| {
        ctx.n = 10;
        ctx.go(
            || -> u32 { panic!("go boom") },
            |ctx, _| ctx.log.push("callback of a panicked job".into()),
        );
        ctx.go(|| 1u32, |_, _| panic!("go callback boom"));
        ctx.spawn(async { 2u32 }, |_, _| panic!("spawn callback boom"));
    })
    .await
    .unwrap();
    // A later job's callback still runs and sees the state.
    r.cast(|ctx| {
        ctx.go(
            || 5u32,
            |ctx, v| {
                let n = ctx.n;
                ctx.log.push(format!("ok {v} saw {n}"));
            },
        )
    })
    .await
    .unwrap();
    eventually(&r, |s| !s.log.is_empty()).await;
    // Give the other callbacks every chance, closed by a round trip through a later job.
    let (tx, rx) = oneshot::channel();
    r.cast(move |ctx| {
        ctx.go(
            || (),
            move |_, _| {
                let _ = tx.send(());
            },
        )
    })
    .await
    .unwrap();
    rx.await.unwrap();
    assert_eq!(read(&r, |ctx| ctx.log.clone()).await, ["ok 5 saw 10"]);
    // Nothing is left counted as in flight: stop does not wait for its (long) drain timeout.
    tokio::time::timeout(LONG, running.stop(Duration::from_secs(30)))
        .await
        .expect("stop does not wait for panicked background jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panic_in_on_destroy_is_caught() {
    let m = st_module("p").on_destroy(|_| panic!("destroy boom"));
    let (_r, running) = start(m).await;
    tokio::time::timeout(LONG, running.stop(LONG))
        .await
        .expect("stop returns");
}

// ---------------------------------------------------------------------------------------------
// 10. Stop: queued jobs and background work before destroy.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_runs_queued_jobs_before_on_destroy() {
    let seen = Log::default();
    let destroy_log = seen.clone();
    let m = st_module("drain").on_destroy(move |ctx| {
        log_push(&destroy_log, format!("destroy saw {:?}", ctx.samples));
    });
    let (r, running) = start(m).await;
    let release = block_module(&r).await;
    for i in 1..=5u32 {
        r.cast(move |ctx| ctx.samples.push(i)).await.unwrap();
    }
    let r2 = r.clone();
    let queued_call = tokio::spawn(async move {
        r2.call(LONG, |ctx| {
            ctx.samples.push(6);
            ctx.samples.len()
        })
        .await
    });
    // Let the call get queued and the stop be requested while the handler still blocks.
    while r.mailbox_depth() < 6 {
        tokio::task::yield_now().await;
    }
    let stopping = tokio::spawn(running.stop(LONG));
    tokio::time::sleep(ms(20)).await;
    release.send(()).unwrap();
    tokio::time::timeout(LONG, stopping)
        .await
        .expect("stop returns")
        .unwrap();
    assert_eq!(
        queued_call.await.unwrap(),
        Ok(6),
        "a queued call is answered"
    );
    assert_eq!(snapshot(&seen), ["destroy saw [1, 2, 3, 4, 5, 6]"]);
    assert_eq!(r.cast(|ctx| ctx.n += 1).await, Err(CallError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_waits_for_background_work_in_flight() {
    let seen = Log::default();
    let destroy_log = seen.clone();
    let m = st_module("drain").on_destroy(move |ctx| {
        let mut log = ctx.log.clone();
        log.sort();
        log_push(&destroy_log, format!("destroy saw {log:?}"));
    });
    let (r, running) = start(m).await;
    let (b, run_b) = start(st_module("b")).await;
    b.cast(|ctx| ctx.n = 3).await.unwrap();
    let target = b.clone();
    read(&r, move |ctx| {
        ctx.go(
            || {
                std::thread::sleep(ms(100));
                42u32
            },
            |ctx, v| ctx.log.push(format!("go {v}")),
        );
        let linear = ctx.linear();
        ctx.go_linear(
            &linear,
            || {
                std::thread::sleep(ms(50));
                1u32
            },
            |ctx, v| ctx.log.push(format!("linear {v}")),
        );
        ctx.spawn(
            async {
                tokio::time::sleep(ms(80)).await;
                8u32
            },
            |ctx, v| ctx.log.push(format!("spawn {v}")),
        );
        ctx.call(
            &target,
            LONG,
            |b| {
                std::thread::sleep(ms(60));
                b.n
            },
            |ctx, res| ctx.log.push(format!("call {res:?}")),
        );
    })
    .await;
    tokio::time::timeout(LONG, running.stop(LONG))
        .await
        .expect("stop returns");
    assert_eq!(
        snapshot(&seen),
        [r#"destroy saw ["call Ok(3)", "go 42", "linear 1", "spawn 8"]"#]
    );
    run_b.stop(LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_abandons_pending_timers_and_late_background_work() {
    let seen = Log::default();
    let destroy_log = seen.clone();
    let m = st_module("late").on_destroy(move |ctx| {
        log_push(
            &destroy_log,
            format!("destroy saw {:?} timers={}", ctx.log, ctx.timer_count()),
        );
    });
    let (r, running) = start(m).await;
    let (job, started, release) = blocking_job();
    r.cast(move |ctx| {
        ctx.after(Duration::from_secs(60), |ctx| ctx.log.push("timer".into()));
        ctx.go(job, |ctx, ()| ctx.log.push("late go".into()));
    })
    .await
    .unwrap();
    started.await.unwrap();
    // The drain timeout is short: stop gives up on the blocked job and does not wait for the
    // timer either.
    tokio::time::timeout(LONG, running.stop(ms(50)))
        .await
        .expect("stop returns after its drain timeout");
    release.send(()).unwrap();
    let seen = snapshot(&seen);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("destroy saw []"), "{seen:?}");
}
