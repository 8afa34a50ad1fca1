.PHONY: run build test lint bench kafka-up kafka-down cluster-up cluster-down

# Start the calculator on the embedded log in ./data (localhost:3030).
run:
	go run .

build:
	go build -o calculator .

# The README's test command, and what CI runs (scripts/test.sh says what).
test:
	bash scripts/test.sh

# go vet and staticcheck (pinned in scripts/lint.sh); part of test.
lint:
	bash scripts/lint.sh

# Start a local single-node Kafka broker on 127.0.0.1 (KAFKA_PORT, default 9092) without Docker;
# KAFKA_NODES=3 starts a three-node cluster instead (replication 3, min.insync.replicas=2).
kafka-up:
	bash scripts/kafka-up.sh

# Stop it (every node) and delete its data.
kafka-down:
	bash scripts/kafka-down.sh

# Figures against the targets of BENCHMARKS.md (minutes; RUNS=, DURATION=, BEFORE=<rev>, BROKERS=host:port).
bench:
	bash scripts/bench.sh

# Three instances on ports 3030-3032 in one consumer group against the broker (KAFKA_BROKERS,
# default 127.0.0.1:9092); scripts/cluster.sh status|kill N|start N for the rest.
cluster-up:
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down
