// kafkago_client drives a Kafka broker with segmentio/kafka-go (Debian's
// golang-github-segmentio-kafka-go-dev) for Cairn's end-to-end tests. Each subcommand prints
// JSON lines on stdout; errors go to stderr and exit with status 1. The commands mirror
// sarama_client's:
//
//	kafkago_client -bootstrap HOST:PORT create-topic -topic T -partitions N [-config k=v]...
//	kafkago_client -bootstrap HOST:PORT describe-topic -topic T
//	kafkago_client -bootstrap HOST:PORT produce -topic T -count N [-codec C] [-prefix P]
//	kafkago_client -bootstrap HOST:PORT consume -topic T -count N [-linger-ms MS]
//	kafkago_client -bootstrap HOST:PORT group-consume -topic T -group G [-count N] [-linger-ms MS]
//	kafkago_client -bootstrap HOST:PORT offsets-for-time -topic T -timestamp MS
//
// Every command gives up with an error after -timeout-ms (default 60000).
// offsets-for-time with -timestamp -2 asks for each partition's first offset (log start).
//
// Everything not named on the command line is kafka-go's default.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

var bootstrap = flag.String("bootstrap", "127.0.0.1:9092", "broker address HOST:PORT")

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

func emit(v interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	if err := out.Encode(v); err != nil {
		log.Fatalf("error: writing stdout: %v", err)
	}
}

// errorLog receives kafka-go's error log (its Readers and Writers retry silently otherwise).
var errorLog = log.New(os.Stderr, "[kafka-go] ", log.Lmicroseconds)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

// Key and value of the i-th produced record; the tests compute the same. kafka-go 0.2 writes
// message format v1, which has no headers.
func recordKey(i int) string { return fmt.Sprintf("key-%d", i%7) }
func recordValue(prefix string, i int) string {
	return strings.Repeat(fmt.Sprintf("%s-%d ", prefix, i), 1+i%20)
}

type record struct {
	Event     string  `json:"event,omitempty"`
	Partition int     `json:"partition"`
	Offset    int64   `json:"offset"`
	Key       *string `json:"key"`
	Value     string  `json:"value"`
	Timestamp int64   `json:"timestamp"`
}

func toRecord(m kafka.Message) record {
	r := record{Partition: m.Partition, Offset: m.Offset, Value: string(m.Value),
		Timestamp: m.Time.UnixNano() / 1e6}
	if m.Key != nil {
		key := string(m.Key)
		r.Key = &key
	}
	return r
}

type configFlags []kafka.ConfigEntry

func (c *configFlags) String() string { return "" }
func (c *configFlags) Set(s string) error {
	kv := strings.SplitN(s, "=", 2)
	if len(kv) != 2 {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	*c = append(*c, kafka.ConfigEntry{ConfigName: kv[0], ConfigValue: kv[1]})
	return nil
}

func main() {
	log.SetFlags(log.Lmicroseconds)
	flag.Parse()
	if flag.NArg() < 1 {
		fail("usage: kafkago_client -bootstrap HOST:PORT COMMAND [flags]")
	}
	cmd, args := flag.Arg(0), flag.Args()[1:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	topic := fs.String("topic", "", "topic")
	partitions := fs.Int("partitions", 1, "partitions of a new topic")
	var configs configFlags
	fs.Var(&configs, "config", "topic config KEY=VALUE (repeatable)")
	count := fs.Int("count", 0, "records to produce or consume (group-consume: 0 = until SIGTERM)")
	codec := fs.String("codec", "none", "none, gzip, snappy or lz4")
	prefix := fs.String("prefix", "value", "value prefix of produced records")
	group := fs.String("group", "", "consumer group")
	linger := fs.Int("linger-ms", 0, "after -count records, keep reading this long (to see extras)")
	timestamp := fs.Int64("timestamp", 0, "milliseconds since the epoch")
	timeout := fs.Int("timeout-ms", 60000, "give up (exit 1) after this long")
	if err := fs.Parse(args); err != nil {
		fail("%v", err)
	}
	if *topic == "" {
		fail("-topic is required")
	}

	time.AfterFunc(time.Duration(*timeout)*time.Millisecond, func() {
		fail("%s timed out after %d ms", cmd, *timeout)
	})
	switch cmd {
	case "create-topic":
		createTopic(*topic, *partitions, configs)
	case "describe-topic":
		describeTopic(*topic)
	case "produce":
		produce(*topic, *count, *codec, *prefix)
	case "consume":
		consume(*topic, *count, time.Duration(*linger)*time.Millisecond)
	case "group-consume":
		groupConsume(*topic, *group, *count, time.Duration(*linger)*time.Millisecond)
	case "offsets-for-time":
		offsetsForTime(*topic, *timestamp)
	default:
		fail("unknown command %q", cmd)
	}
}

func dial() *kafka.Conn {
	conn, err := kafka.Dial("tcp", *bootstrap)
	if err != nil {
		fail("dial %s: %v", *bootstrap, err)
	}
	return conn
}

// createTopic sends CreateTopics to the bootstrap broker (a one-node cluster's controller).
func createTopic(topic string, partitions int, configs configFlags) {
	conn := dial()
	defer conn.Close()
	err := conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions,
		ReplicationFactor: 1, ConfigEntries: configs})
	if err != nil {
		fail("create topic %s: %v", topic, err)
	}
	emit(map[string]interface{}{"created": topic})
}

// describeTopic prints the partitions of one topic with their leaders (Metadata v1).
// kafka-go 0.2 cannot list all topics: it sends an empty topic list, which asks for none.
func describeTopic(topic string) {
	conn := dial()
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		fail("describe topic %s: %v", topic, err)
	}
	leaders := map[int]int{}
	for _, p := range parts {
		leaders[p.ID] = p.Leader.ID
	}
	emit(map[string]interface{}{"leaders": leaders})
}

var codecs = map[string]kafka.CompressionCodec{
	"none": nil, "gzip": gzip.NewCompressionCodec(), "snappy": snappy.NewCompressionCodec(),
	"lz4": lz4.NewCompressionCodec(),
}

// produce writes `count` records with one Writer (its own batching, round-robin balancer
// and timestamps) in a single WriteMessages call, which returns once all were acknowledged.
// kafka-go 0.2 does not report where a record landed, so only the count is printed.
func produce(topic string, count int, codecName, prefix string) {
	codec, ok := codecs[codecName]
	if !ok {
		fail("unknown codec %q", codecName)
	}
	writer := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{*bootstrap}, Topic: topic,
		CompressionCodec: codec, ErrorLogger: errorLog})
	messages := make([]kafka.Message, count)
	for i := range messages {
		messages[i] = kafka.Message{Key: []byte(recordKey(i)), Value: []byte(recordValue(prefix, i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := writer.WriteMessages(ctx, messages...); err != nil {
		fail("produce: %v", err)
	}
	if err := writer.Close(); err != nil {
		fail("close writer: %v", err)
	}
	emit(map[string]interface{}{"produced": count})
}

func partitionsOf(topic string) []int {
	conn := dial()
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		fail("partitions of %s: %v", topic, err)
	}
	ids := []int{}
	for _, p := range parts {
		ids = append(ids, p.ID)
	}
	return ids
}

// consume reads every partition from its first offset with one partition Reader each (no
// group) until `count` records arrived, then `linger` longer.
func consume(topic string, count int, linger time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	messages := make(chan kafka.Message)
	for _, p := range partitionsOf(topic) {
		reader := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{*bootstrap}, Topic: topic,
			Partition: p, ErrorLogger: errorLog})
		if err := reader.SetOffset(kafka.FirstOffset); err != nil {
			fail("seek partition %d: %v", p, err)
		}
		go func() {
			for {
				m, err := reader.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						fail("read: %v", err)
					}
					return
				}
				messages <- m
			}
		}()
	}
	got := 0
	var deadline <-chan time.Time
	if count == 0 {
		deadline = time.After(linger)
	}
	for {
		select {
		case m := <-messages:
			emit(toRecord(m))
			got++
			if got == count {
				deadline = time.After(linger)
			}
		case <-deadline:
			return
		}
	}
}

// groupConsume reads with a group Reader, whose ReadMessage commits each message it returns
// (kafka-go's default), until `count` records (then `linger` longer) or SIGTERM.
func groupConsume(topic, group string, count int, linger time.Duration) {
	if group == "" {
		fail("-group is required")
	}
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{*bootstrap}, Topic: topic,
		GroupID: group, ErrorLogger: errorLog})
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		cancel()
	}()
	for got := 0; ctx.Err() == nil; {
		m, err := reader.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fail("read: %v", err)
			}
			break
		}
		r := toRecord(m)
		r.Event = "record"
		emit(r)
		got++
		if got == count {
			if linger == 0 {
				cancel()
			} else {
				time.AfterFunc(linger, cancel)
			}
		}
	}
	if err := reader.Close(); err != nil {
		fail("close reader: %v", err)
	}
	emit(map[string]interface{}{"event": "closed"})
}

// offsetsForTime prints, per partition, the offset of the first record stamped `timestamp`
// or later (ListOffsets by time), -1 if there is none; -2 asks for the first offset.
func offsetsForTime(topic string, timestamp int64) {
	offsets := map[int]int64{}
	for _, p := range partitionsOf(topic) {
		conn, err := kafka.DialLeader(context.Background(), "tcp", *bootstrap, topic, p)
		if err != nil {
			fail("dial leader of partition %d: %v", p, err)
		}
		var offset int64
		if timestamp == -2 {
			offset, err = conn.ReadFirstOffset()
		} else {
			offset, err = conn.ReadOffset(time.Unix(0, timestamp*int64(time.Millisecond)))
		}
		conn.Close()
		if err != nil {
			fail("offset of partition %d at %d: %v", p, timestamp, err)
		}
		offsets[p] = offset
	}
	emit(map[string]interface{}{"offsets": offsets})
}
