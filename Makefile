.PHONY: kafka-up kafka-down

# Start a local single-node Kafka broker on 127.0.0.1 (KAFKA_PORT, default 9092) without Docker.
kafka-up:
	bash scripts/kafka-up.sh

# Stop it and delete its data.
kafka-down:
	bash scripts/kafka-down.sh
