#!/usr/bin/env python3
"""Topic and subject housekeeping for scripts/bench.sh (Confluent's Python client).

  kafka_admin.py create BROKERS TOPIC PARTITIONS [name=value ...]   create a topic with configs
  kafka_admin.py drop BROKERS PREFIX [REGISTRY_URL]                delete topics (and subjects) starting with PREFIX
  kafka_admin.py config BROKERS TOPIC NAME                          print one topic config value
  kafka_admin.py count BROKERS TOPIC                                print how many messages TOPIC holds

The broker keeps everything in memory, so every measurement deletes its topics afterwards.
"""
import json
import sys
import urllib.request

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic


def admin(brokers):
    return AdminClient({"bootstrap.servers": brokers})


def create(brokers, topic, partitions, *configs):
    cfg = dict(c.split("=", 1) for c in configs)
    # Keep the client referenced until the futures resolve: a collected client ends them.
    a = admin(brokers)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=int(partitions), replication_factor=1, config=cfg)],
        request_timeout=30,
    )
    for f in fs.values():
        f.result(timeout=60)


def drop(brokers, prefix, registry=None):
    a = admin(brokers)
    topics = [t for t in a.list_topics(timeout=30).topics if t.startswith(prefix)]
    if topics:
        for t, f in a.delete_topics(topics, request_timeout=60).items():
            try:
                f.result(timeout=90)
            except Exception as e:  # a topic deleted meanwhile is fine
                print(f"kafka_admin: deleting {t}: {e}", file=sys.stderr)
    if registry:
        try:
            subjects = json.load(urllib.request.urlopen(registry + "/subjects", timeout=10))
        except OSError as e:
            print(f"kafka_admin: registry not reachable: {e}", file=sys.stderr)
            return
        for s in subjects:
            if s.startswith(prefix):
                for permanent in ("", "?permanent=true"):
                    req = urllib.request.Request(f"{registry}/subjects/{s}{permanent}", method="DELETE")
                    try:
                        urllib.request.urlopen(req, timeout=10).read()
                    except OSError:
                        pass


def config(brokers, topic, name):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = admin(brokers)
    for f in a.describe_configs([res]).values():
        entries = f.result(timeout=60)
        print(entries[name].value if name in entries else "")


def count(brokers, topic):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": brokers, "group.id": "cdcql-bench-count"})
    parts = c.list_topics(topic, timeout=30).topics[topic].partitions
    n = 0
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        n += hi - lo
    c.close()
    print(n)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"create": create, "drop": drop, "config": config, "count": count}[cmd](*args)
