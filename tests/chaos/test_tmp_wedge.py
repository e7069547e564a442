import random, time, signal
from tests.chaos import diagnostics
from tests.chaos.engagement_load import EngagementLoad, EngagementPlan
from tests.chaos.journal import Journal
from tests.e2e.pipeline import Pipeline

def judged(p):
    try:
        return p.ingest_counts().consumed
    except Exception as e:
        return -1

def wait_judged(p, above, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if judged(p) > above:
            return True
        time.sleep(0.3)
    return False

def test_wedge(tmp_path, kafka_bootstrap, kafka_broker, postgres_dsn):
    rng = random.Random()
    for attempt in range(4):
        j = Journal()
        p = Pipeline(tmp_path / f"a{attempt}", kafka_bootstrap, postgres_dsn, {"PYTHONFAULTHANDLER": "1"})
        p.ensure_engagement_topic()
        load = EngagementLoad(kafka_bootstrap, p.setup.stream.engagement_topic, EngagementPlan(random.Random(1)), 10, j)
        load.start()
        a = p.start("ingest"); time.sleep(rng.uniform(1, 6)); a.kill(); j.note("t", f"killed A judged={judged(p)}")
        time.sleep(1.5)
        b = p.start("ingest"); time.sleep(rng.uniform(1, 4))
        kafka_broker.kill(); j.note("t", "broker killed"); time.sleep(4); kafka_broker.start(); j.note("t", "broker up")
        ok_b = wait_judged(p, judged(p), 20); j.note("t", f"B judging: {ok_b} judged={judged(p)}")
        b.kill(); time.sleep(0.4)
        c = p.start("ingest"); time.sleep(4); c.kill(); time.sleep(1.2)
        d = p.start("ingest")
        ok_d = wait_judged(p, judged(p), 40); j.note("t", f"D judging: {ok_d} judged={judged(p)}")
        if not ok_d:
            for line in diagnostics.describe(p): print(line)
            d.process.send_signal(signal.SIGABRT); time.sleep(3)
            log = d.log_path.read_text()
            print("\n".join(diagnostics.log_digest(log, 30)))
            print("\n".join(diagnostics.stack_dump(log)))
            load.close()
            raise AssertionError(f"wedged, logs in {p.log_dir}")
        d.terminate()
        load.close()
