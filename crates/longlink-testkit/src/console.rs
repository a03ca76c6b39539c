//! The admin console (`[admin] console_addr`) seen from outside: a line protocol, each answer
//! followed by the prompt `longlink> `.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::STEP;

/// What the console writes after its greeting and after every answer.
pub const PROMPT: &str = "longlink> ";

/// One console session: commands in, answers up to the next prompt out.
#[derive(Debug)]
pub struct Console {
    stream: TcpStream,
    /// Read but not yet returned.
    buf: Vec<u8>,
}

impl Console {
    /// Connects and reads the greeting, which must be the prompt alone.
    pub async fn connect(addr: SocketAddr) -> Console {
        let stream = TcpStream::connect(addr).await.expect("the console listens");
        let mut c = Console {
            stream,
            buf: Vec::new(),
        };
        let greeting = c.until_prompt().await.expect("a prompt");
        assert_eq!(greeting, "", "the console greets with the prompt alone");
        c
    }

    /// Everything up to the next prompt; `Err(text)` with what came if the console closed
    /// first. Each read waits at most [`STEP`].
    pub async fn until_prompt(&mut self) -> Result<String, String> {
        let prompt = PROMPT.as_bytes();
        loop {
            if let Some(i) = self.buf.windows(prompt.len()).position(|w| w == prompt) {
                let text = String::from_utf8(self.buf[..i].to_vec()).expect("UTF-8 answer");
                self.buf.drain(..i + prompt.len());
                return Ok(text);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(STEP, self.stream.read(&mut chunk))
                .await
                .expect("console answers in time")
                .unwrap_or(0);
            if n == 0 {
                return Err(String::from_utf8_lossy(&self.buf).into_owned());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `line` and returns the answer (up to the next prompt).
    pub async fn run(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\n").as_bytes()).await;
        self.until_prompt().await.expect("an answer, then a prompt")
    }

    /// Writes bytes as they are (e.g. `quit\n` without waiting for a prompt, or an overlong
    /// line).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the console");
    }
}
