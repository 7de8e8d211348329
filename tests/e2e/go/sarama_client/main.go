// sarama_client drives a Kafka broker with Sarama (Debian's golang-github-shopify-sarama-dev)
// for Cairn's end-to-end tests. Each subcommand prints JSON lines on stdout; Sarama's own log
// and any error go to stderr, and a failure exits with status 1.
//
//	sarama_client -bootstrap HOST:PORT create-topic -topic T -partitions N [-config k=v]...
//	sarama_client -bootstrap HOST:PORT describe-topic -topic T
//	sarama_client -bootstrap HOST:PORT describe-config -topic T
//	sarama_client -bootstrap HOST:PORT produce -topic T -count N [-codec C] [-prefix P]
//	sarama_client -bootstrap HOST:PORT consume -topic T -count N [-linger-ms MS]
//	sarama_client -bootstrap HOST:PORT group-consume -topic T -group G [-count N] [-linger-ms MS]
//	sarama_client -bootstrap HOST:PORT offsets-for-time -topic T -timestamp MS
//
// Every command gives up with an error after -timeout-ms (default 60000).
// offsets-for-time with -timestamp -2 asks for each partition's first offset (log start).
//
// Everything not named on the command line is Sarama's default, except what the broker
// requires of a client this old (see newConfig).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Shopify/sarama"
)

var bootstrap = flag.String("bootstrap", "127.0.0.1:9092", "broker address HOST:PORT")

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

// emit prints one JSON line; safe from any goroutine.
func emit(v interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	if err := out.Encode(v); err != nil {
		log.Fatalf("error: writing stdout: %v", err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

// newConfig is Sarama's default configuration with the two settings a Kafka 2.x+ broker
// needs from Sarama 1.22: the protocol version (the default, 0.8.2, speaks requests Kafka 4
// and Cairn no longer serve) and a committed-offset retention, without which Sarama sends
// OffsetCommit v1 (also gone from Kafka 4); 7 days is Kafka's own default.
func newConfig() *sarama.Config {
	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0
	config.Consumer.Offsets.Retention = 7 * 24 * time.Hour
	return config
}

// Key, value and header of the i-th produced record; the tests compute the same.
func recordKey(i int) string { return fmt.Sprintf("key-%d", i%7) }
func recordValue(prefix string, i int) string {
	return strings.Repeat(fmt.Sprintf("%s-%d ", prefix, i), 1+i%20)
}

type record struct {
	Event      string            `json:"event,omitempty"`
	Member     string            `json:"member,omitempty"`
	Generation int32             `json:"generation,omitempty"`
	Partition  int32             `json:"partition"`
	Offset     int64             `json:"offset"`
	Key        *string           `json:"key"`
	Value      string            `json:"value"`
	Headers    map[string]string `json:"headers"`
	Timestamp  int64             `json:"timestamp"`
}

func toRecord(m *sarama.ConsumerMessage) record {
	r := record{Partition: m.Partition, Offset: m.Offset, Value: string(m.Value),
		Headers: map[string]string{}, Timestamp: m.Timestamp.UnixNano() / 1e6}
	if m.Key != nil {
		key := string(m.Key)
		r.Key = &key
	}
	for _, h := range m.Headers {
		r.Headers[string(h.Key)] = string(h.Value)
	}
	return r
}

// configFlags collects repeated -config k=v flags.
type configFlags map[string]*string

func (c configFlags) String() string { return "" }
func (c configFlags) Set(s string) error {
	kv := strings.SplitN(s, "=", 2)
	if len(kv) != 2 {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	c[kv[0]] = &kv[1]
	return nil
}

func main() {
	log.SetFlags(log.Lmicroseconds)
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	flag.Parse()
	if flag.NArg() < 1 {
		fail("usage: sarama_client -bootstrap HOST:PORT COMMAND [flags]")
	}
	cmd, args := flag.Arg(0), flag.Args()[1:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	topic := fs.String("topic", "", "topic")
	partitions := fs.Int("partitions", 1, "partitions of a new topic")
	configs := configFlags{}
	fs.Var(configs, "config", "topic config KEY=VALUE (repeatable)")
	count := fs.Int("count", 0, "records to produce or consume (group-consume: 0 = until SIGTERM)")
	codec := fs.String("codec", "none", "none, gzip, snappy, lz4 or zstd")
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
	case "describe-config":
		describeConfig(*topic)
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

func newAdmin() sarama.ClusterAdmin {
	admin, err := sarama.NewClusterAdmin([]string{*bootstrap}, newConfig())
	if err != nil {
		fail("admin: %v", err)
	}
	return admin
}

func createTopic(topic string, partitions int, configs configFlags) {
	admin := newAdmin()
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1,
		ConfigEntries: configs}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		fail("create topic %s: %v", topic, err)
	}
	emit(map[string]interface{}{"created": topic})
}

// describeTopic lists the cluster's topics (Metadata) and describes one: its partitions and
// their leaders.
func describeTopic(topic string) {
	client, err := sarama.NewClient([]string{*bootstrap}, newConfig())
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	topics, err := client.Topics()
	if err != nil {
		fail("list topics: %v", err)
	}
	admin := newAdmin()
	defer admin.Close()
	metadata, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		fail("describe topic %s: %v", topic, err)
	}
	leaders := map[int32]int32{}
	for _, t := range metadata {
		if t.Err != sarama.ErrNoError {
			fail("describe topic %s: %v", topic, t.Err)
		}
		for _, p := range t.Partitions {
			leaders[p.ID] = p.Leader
		}
	}
	sort.Strings(topics)
	emit(map[string]interface{}{"topics": topics, "leaders": leaders})
}

func describeConfig(topic string) {
	admin := newAdmin()
	defer admin.Close()
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		fail("describe config of %s: %v", topic, err)
	}
	configs := map[string]string{}
	for _, e := range entries {
		configs[e.Name] = e.Value
	}
	emit(map[string]interface{}{"configs": configs})
}

var codecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4,
	"zstd": sarama.CompressionZSTD,
}

// produce sends `count` records through the asynchronous producer (Sarama's own batching and
// pipelining, default partitioner and timestamps) and prints where each one landed.
func produce(topic string, count int, codecName, prefix string) {
	config := newConfig()
	codec, ok := codecs[codecName]
	if !ok {
		fail("unknown codec %q", codecName)
	}
	config.Producer.Compression = codec
	config.Producer.Return.Successes = true
	producer, err := sarama.NewAsyncProducer([]string{*bootstrap}, config)
	if err != nil {
		fail("producer: %v", err)
	}
	go func() {
		for i := 0; i < count; i++ {
			producer.Input() <- &sarama.ProducerMessage{
				Topic:    topic,
				Key:      sarama.StringEncoder(recordKey(i)),
				Value:    sarama.StringEncoder(recordValue(prefix, i)),
				Headers:  []sarama.RecordHeader{{Key: []byte("n"), Value: []byte(fmt.Sprint(i))}},
				Metadata: i,
			}
		}
	}()
	for done := 0; done < count; done++ {
		select {
		case msg := <-producer.Successes():
			emit(map[string]interface{}{"i": msg.Metadata, "partition": msg.Partition, "offset": msg.Offset})
		case perr := <-producer.Errors():
			fail("produce record %v: %v", perr.Msg.Metadata, perr.Err)
		}
	}
	if err := producer.Close(); err != nil {
		fail("close producer: %v", err)
	}
}

// consume reads every partition from the oldest offset with partition consumers (no group)
// until `count` records arrived, then `linger` longer.
func consume(topic string, count int, linger time.Duration) {
	consumer, err := sarama.NewConsumer([]string{*bootstrap}, newConfig())
	if err != nil {
		fail("consumer: %v", err)
	}
	parts, err := consumer.Partitions(topic)
	if err != nil {
		fail("partitions of %s: %v", topic, err)
	}
	messages := make(chan *sarama.ConsumerMessage)
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume partition %d: %v", p, err)
		}
		go func() {
			for m := range pc.Messages() {
				messages <- m
			}
		}()
	}
	got := 0
	var deadline <-chan time.Time // nil, so never ready, until `count` records arrived
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

// groupHandler prints each claimed record and marks it consumed; Sarama commits marked
// offsets every second (Consumer.Offsets.CommitInterval) and when the group is closed.
type groupHandler struct {
	mu     sync.Mutex
	count  int // 0: no limit
	got    int
	done   func()
	linger time.Duration
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	parts := s.Claims()
	emit(map[string]interface{}{"event": "assigned", "member": s.MemberID(),
		"generation": s.GenerationID(), "partitions": parts})
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	emit(map[string]interface{}{"event": "revoked", "member": s.MemberID(),
		"generation": s.GenerationID()})
	return nil
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			if h.count > 0 && h.got >= h.count && h.linger == 0 {
				h.mu.Unlock() // not ours to process: leave it uncommitted
				return nil
			}
			r := toRecord(m)
			r.Event, r.Member, r.Generation = "record", s.MemberID(), s.GenerationID()
			emit(r)
			s.MarkMessage(m, "")
			h.got++
			if h.count > 0 && h.got == h.count {
				if h.linger == 0 {
					h.done()
				} else {
					time.AfterFunc(h.linger, h.done)
				}
			}
			h.mu.Unlock()
		case <-s.Context().Done():
			return nil
		}
	}
}

// groupConsume joins `group` (from the oldest offset when the group has none committed) and
// consumes until `count` records were processed (then `linger` longer) or SIGTERM, then closes
// the group, which commits what was marked.
func groupConsume(topic, group string, count int, linger time.Duration) {
	if group == "" {
		fail("-group is required")
	}
	config := newConfig()
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	consumerGroup, err := sarama.NewConsumerGroup([]string{*bootstrap}, group, config)
	if err != nil {
		fail("consumer group: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		cancel()
	}()
	handler := &groupHandler{count: count, done: cancel, linger: linger}
	for ctx.Err() == nil {
		if err := consumerGroup.Consume(ctx, []string{topic}, handler); err != nil && ctx.Err() == nil {
			log.Printf("consume: %v (retrying)", err)
			time.Sleep(500 * time.Millisecond)
		}
	}
	if err := consumerGroup.Close(); err != nil {
		fail("close consumer group: %v", err)
	}
	emit(map[string]interface{}{"event": "closed"})
}

// offsetsForTime prints, per partition, the offset of the first record stamped `timestamp`
// or later (ListOffsets by time), -1 if there is none.
func offsetsForTime(topic string, timestamp int64) {
	client, err := sarama.NewClient([]string{*bootstrap}, newConfig())
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		fail("partitions of %s: %v", topic, err)
	}
	offsets := map[int32]int64{}
	for _, p := range parts {
		offset, err := client.GetOffset(topic, p, timestamp)
		if err != nil {
			fail("offset of partition %d at %d: %v", p, timestamp, err)
		}
		offsets[p] = offset
	}
	emit(map[string]interface{}{"offsets": offsets})
}
