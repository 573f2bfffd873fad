import time

from atomlens._shared.timing import record_stages, stage


def test_stages_record_their_own_time_and_add_up_to_the_wall_time():
    t0 = time.perf_counter()
    with record_stages() as seconds:
        with stage("outer"):
            time.sleep(0.02)
            with stage("inner"):
                time.sleep(0.03)
            with stage("inner"):
                time.sleep(0.01)
    wall = time.perf_counter() - t0
    assert set(seconds) == {"outer", "inner"}
    assert 0.04 <= seconds["inner"] < 0.04 + 0.03  # both inner blocks, summed
    assert 0.02 <= seconds["outer"] < 0.02 + 0.03  # without the inner ones
    assert sum(seconds.values()) <= wall


def test_stages_outside_a_recording_record_nothing_and_recordings_nest():
    with stage("nobody asked"):
        pass
    with record_stages() as outer:
        with stage("a"):
            pass
        with record_stages() as inner, stage("b"):
            pass
    assert set(outer) == {"a"} and set(inner) == {"b"}
