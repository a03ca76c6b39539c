//! The server side of the resume tests: a gate with `resume_window` on and a module that
//! answers `Echo`s, streams numbered `Echo`s on `Stream`, and logs every event.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use longlink::gate::GateHandle;
use longlink::{Agent, App, Ctx, Encoding, Gate, GateConfig, Module, ModuleRef, Processor};
use longlink_testkit::{STEP, wait_for};
use serde::{Deserialize, Serialize};

use crate::common::{Echo, Running, run};

/// `Stream{n, from}`: the server writes `Echo{"<from>".."<from+n-1>"}`, a few at a time.
#[derive(Clone, PartialEq, Serialize, Deserialize, prost::Message)]
pub struct Stream {
    #[prost(uint32, tag = "1")]
    pub n: u32,
    #[prost(uint32, tag = "2")]
    pub from: u32,
}

/// What the module saw: `(agent id, "new" | "close" | "resume" | "msg:<text>")`.
pub type Log = Arc<Mutex<Vec<(u64, String)>>>;

pub struct Server {
    pub tcp: SocketAddr,
    pub ws: SocketAddr,
    pub gate: GateHandle,
    pub log: Log,
    pub module: ModuleRef<Log>,
    app: Running,
}

pub fn config(encoding: Encoding, window: Duration, buffer: usize) -> GateConfig {
    GateConfig {
        tcp_addr: "127.0.0.1:0".into(),
        ws_addr: "127.0.0.1:0".into(),
        encoding,
        resume_window: window,
        resume_buffer: buffer,
        ..GateConfig::default()
    }
}

fn note(log: &Log, agent: &Agent, what: impl Into<String>) {
    log.lock().unwrap().push((agent.id(), what.into()));
}

pub async fn start(config: GateConfig) -> Server {
    let log: Log = Log::default();
    let module = Module::new("room", Arc::clone(&log));
    let m = module.module_ref();
    let mut p = Processor::new(config.encoding);
    p.register::<Echo>().unwrap();
    p.register::<Stream>().unwrap();
    p.route(&m, |ctx: &mut Ctx<Log>, msg: Echo, agent: &Agent| {
        note(ctx, agent, format!("msg:{}", msg.text));
        let _ = agent.write(&msg);
    })
    .unwrap();
    p.route(&m, |_ctx: &mut Ctx<Log>, msg: Stream, agent: &Agent| {
        let agent = agent.clone();
        tokio::spawn(async move {
            for i in msg.from..msg.from + msg.n {
                if agent
                    .write(&Echo {
                        text: i.to_string(),
                    })
                    .is_err()
                {
                    break;
                }
                if i % 8 == 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        });
    })
    .unwrap();
    let gate = Gate::builder(config, p)
        .on_new_agent(&m, |log: &mut Log, agent: &Agent| note(log, agent, "new"))
        .on_close_agent(&m, |log: &mut Log, agent: &Agent| note(log, agent, "close"))
        .on_resume(&m, |log: &mut Log, agent: &Agent| {
            note(log, agent, "resume")
        })
        .bind()
        .await
        .expect("gate binds");
    let (tcp, ws) = (gate.tcp_addr().unwrap(), gate.ws_addr().unwrap());
    let handle = gate.handle();
    let app = run(App::new()
        .module(module)
        .gate(gate)
        .shutdown_timeout(Duration::from_secs(5)));
    Server {
        tcp,
        ws,
        gate: handle,
        log,
        module: m,
        app,
    }
}

impl Server {
    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }

    /// The events of agent `id`, in order.
    pub fn events_of(&self, id: u64) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == id)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The agent ids in the order of their new events.
    pub fn agents(&self) -> Vec<u64> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| e == "new")
            .map(|(a, _)| *a)
            .collect()
    }

    /// Waits until the log has `event` for agent `id`.
    pub async fn wait_event(&self, id: u64, event: &str) {
        let log = Arc::clone(&self.log);
        wait_for(&format!("{event} of agent {id}"), || {
            let found = log
                .lock()
                .unwrap()
                .iter()
                .any(|(a, e)| *a == id && e == event);
            async move { found }
        })
        .await;
    }

    /// A barrier on the module: every event queued so far has been logged.
    pub async fn settle(&self) {
        self.module
            .call(STEP, |_| ())
            .await
            .expect("module answers");
    }
}
