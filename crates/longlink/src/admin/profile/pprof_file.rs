//! The samples as pprof's `profile.proto` (the part of it a CPU profile needs), encoded with
//! the workspace's prost, gzip-compressed as `go tool pprof` reads it.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::SystemTime;

use flate2::Compression;
use flate2::write::GzEncoder;
use pprof::Report;
use prost::Message;

/// Gzip-compresses `bytes` (what `go tool pprof` expects of a `.pb.gz`).
pub(super) fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The string table of a pprof profile: index 0 is the empty string.
struct Strings {
    /// The strings, in index order.
    table: Vec<String>,
    /// Each string's index.
    index: HashMap<String, i64>,
}

impl Strings {
    /// A table holding only `""`.
    fn new() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    /// The index of `s`, added if new.
    fn intern(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// `report` encoded as pprof's `perftools.profiles.Profile` (uncompressed).
///
/// Two sample types, `samples/count` and `cpu/nanoseconds`; one location per stack frame,
/// holding one line per function inlined at that frame (innermost first, as pprof wants);
/// each sample labelled with its thread's name.
pub(super) fn encode_pprof(report: &Report) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut functions: Vec<proto::Function> = Vec::new();
    let mut function_ids: HashMap<(i64, i64, i64), u64> = HashMap::new();
    let mut locations: Vec<proto::Location> = Vec::new();
    let mut location_ids: HashMap<Vec<(u64, i64)>, u64> = HashMap::new();
    let frequency = i64::from(report.timing.frequency.max(1));
    let period = 1_000_000_000 / frequency;
    let thread_key = strings.intern("thread");

    let mut samples = Vec::with_capacity(report.data.len());
    for (frames, &count) in &report.data {
        let mut location_id = Vec::with_capacity(frames.frames.len());
        // Leaf first, as in `Frames` (and in the profile format).
        for frame in frames.frames.iter().filter(|frame| !frame.is_empty()) {
            let lines: Vec<(u64, i64)> = frame
                .iter()
                .map(|symbol| {
                    let key = (
                        strings.intern(&symbol.name()),
                        strings.intern(&symbol.sys_name()),
                        strings.intern(&symbol.filename()),
                    );
                    let id = *function_ids.entry(key).or_insert_with(|| {
                        let id = functions.len() as u64 + 1;
                        functions.push(proto::Function {
                            id,
                            name: key.0,
                            system_name: key.1,
                            filename: key.2,
                        });
                        id
                    });
                    (id, i64::from(symbol.lineno()))
                })
                .collect();
            let id = match location_ids.get(&lines) {
                Some(&id) => id,
                None => {
                    let id = locations.len() as u64 + 1;
                    locations.push(proto::Location {
                        id,
                        line: lines
                            .iter()
                            .map(|&(function_id, line)| proto::Line { function_id, line })
                            .collect(),
                    });
                    location_ids.insert(lines, id);
                    id
                }
            };
            location_id.push(id);
        }
        let count = count as i64;
        samples.push(proto::Sample {
            location_id,
            value: vec![count, count.saturating_mul(period)],
            label: vec![proto::Label {
                key: thread_key,
                str: strings.intern(&frames.thread_name_or_id()),
            }],
        });
    }

    let samples_type = proto::ValueType {
        r#type: strings.intern("samples"),
        unit: strings.intern("count"),
    };
    let cpu_type = proto::ValueType {
        r#type: strings.intern("cpu"),
        unit: strings.intern("nanoseconds"),
    };
    let profile = proto::Profile {
        sample_type: vec![samples_type, cpu_type.clone()],
        sample: samples,
        location: locations,
        function: functions,
        string_table: strings.table,
        time_nanos: report
            .timing
            .start_time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i64),
        duration_nanos: report.timing.duration.as_nanos() as i64,
        period_type: Some(cpu_type),
        period,
        default_sample_type: 0,
    };
    profile.encode_to_vec()
}

/// The part of pprof's `profile.proto` (package `perftools.profiles`) that a CPU profile
/// uses; field numbers as in that file.
pub(crate) mod proto {
    /// A profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Profile {
        /// What each value of a sample measures.
        #[prost(message, repeated, tag = "1")]
        pub(crate) sample_type: Vec<ValueType>,
        /// The samples.
        #[prost(message, repeated, tag = "2")]
        pub(crate) sample: Vec<Sample>,
        /// The stack frames the samples refer to.
        #[prost(message, repeated, tag = "4")]
        pub(crate) location: Vec<Location>,
        /// The functions the locations refer to.
        #[prost(message, repeated, tag = "5")]
        pub(crate) function: Vec<Function>,
        /// Every string, referred to by index; `string_table[0]` is `""`.
        #[prost(string, repeated, tag = "6")]
        pub(crate) string_table: Vec<String>,
        /// When the profile started, in nanoseconds since the Unix epoch.
        #[prost(int64, tag = "9")]
        pub(crate) time_nanos: i64,
        /// How long the profile ran, in nanoseconds.
        #[prost(int64, tag = "10")]
        pub(crate) duration_nanos: i64,
        /// What `period` measures.
        #[prost(message, optional, tag = "11")]
        pub(crate) period_type: Option<ValueType>,
        /// The time between two samples, in `period_type` units.
        #[prost(int64, tag = "12")]
        pub(crate) period: i64,
        /// The sample type shown by default (a string index; 0: the last one).
        #[prost(int64, tag = "14")]
        pub(crate) default_sample_type: i64,
    }

    /// A kind of value and its unit, as string indexes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ValueType {
        /// The kind (`samples`, `cpu`).
        #[prost(int64, tag = "1")]
        pub(crate) r#type: i64,
        /// The unit (`count`, `nanoseconds`).
        #[prost(int64, tag = "2")]
        pub(crate) unit: i64,
    }

    /// One stack and its values.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Sample {
        /// The stack, leaf first.
        #[prost(uint64, repeated, tag = "1")]
        pub(crate) location_id: Vec<u64>,
        /// One value per `Profile::sample_type`.
        #[prost(int64, repeated, tag = "2")]
        pub(crate) value: Vec<i64>,
        /// Labels (the thread).
        #[prost(message, repeated, tag = "3")]
        pub(crate) label: Vec<Label>,
    }

    /// A string label of a sample, as string indexes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Label {
        /// The label's name.
        #[prost(int64, tag = "1")]
        pub(crate) key: i64,
        /// The label's value.
        #[prost(int64, tag = "2")]
        pub(crate) str: i64,
    }

    /// A stack frame.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Location {
        /// Its id (non-zero, unique).
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        /// The functions at this frame: the inlined ones first, the caller they were
        /// inlined into last.
        #[prost(message, repeated, tag = "4")]
        pub(crate) line: Vec<Line>,
    }

    /// A source line of a function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Line {
        /// The function's id.
        #[prost(uint64, tag = "1")]
        pub(crate) function_id: u64,
        /// The line number (0: unknown).
        #[prost(int64, tag = "2")]
        pub(crate) line: i64,
    }

    /// A function, as string indexes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Function {
        /// Its id (non-zero, unique).
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        /// The demangled name.
        #[prost(int64, tag = "2")]
        pub(crate) name: i64,
        /// The symbol as in the binary (mangled).
        #[prost(int64, tag = "3")]
        pub(crate) system_name: i64,
        /// The source file.
        #[prost(int64, tag = "4")]
        pub(crate) filename: i64,
    }
}
