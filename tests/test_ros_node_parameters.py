"""Node parameter declarations, validation, config/matcher.yaml, and the ROS package files."""
import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from distillmatch_core.ros_interface.node_parameters import (PARAMETER_SPECS, SPECS_BY_NAME,
                                                             ParameterValidationError, check_runtime_change,
                                                             config_from_values, default_values, find_problems,
                                                             flatten_parameters, load_parameter_file)

REPO = Path(__file__).resolve().parents[1]


def test_every_parameter_is_documented_and_has_a_sane_range():
    for spec in PARAMETER_SPECS:
        assert len(spec.description) > 10, spec.name
        assert spec.value_type in (bool, int, float, str), spec.name
        if spec.value_type in (int, float):
            assert spec.minimum is not None and spec.maximum is not None, spec.name
            assert spec.minimum <= spec.default <= spec.maximum, spec.name
        assert spec.check(spec.default) is None, spec.name


def test_defaults_build_the_config():
    config = config_from_values(default_values())
    assert config.model.backend == "auto" and config.model.weights == "default"
    assert config.pairing.slop_s == 0.05 and config.pairing.queue_size == 10
    assert config.input_qos == "sensor_data"
    assert config.processing.homography_filter.enabled is True
    assert config.processing.thermal_normalization.high_percentile == 99.0


@pytest.mark.parametrize("name, value, pattern", [
    ("backend", "tensorflow", "not one of"),
    ("device", "gpu0", "not cpu, cuda or cuda:N"),
    ("slop", 0.0, "below the minimum"),
    ("slop", 1, "expected float.*decimal point"),
    ("queue_size", 10.0, "expected int"),
    ("queue_size", True, "expected int"),  # bool is not an int parameter
    ("min_inliers", 3, "below the minimum"),
    ("match_confidence_threshold", 1.5, "above the maximum"),
    ("input_qos", "best_effort", "not one of"),
    ("use_camera_info", "yes", "expected bool"),
])
def test_invalid_values_are_reported(name, value, pattern):
    values = {**default_values(), name: value}
    with pytest.raises(ParameterValidationError, match=pattern) as info:
        config_from_values(values)
    assert len(info.value.problems) == 1


def test_all_problems_reported_at_once_and_cross_parameter_rule():
    values = {**default_values(), "backend": "x", "thermal_normalization.low_percentile": 99.5,
              "unknown_thing": 1}
    del values["weights"]
    problems = find_problems(values)
    joined = "\n".join(problems)
    assert "unknown_thing: unknown parameter" in joined and "weights: missing" in joined
    assert "backend" in joined and "low_percentile (99.5) must be below" in joined


def test_max_matches_reaches_the_model_config_and_is_torch_only():
    config = config_from_values({**default_values(), "max_matches": 512})
    assert config.model.max_matches == 512
    assert config_from_values(default_values()).model.max_matches == 0  # every match
    for backend in ("onnxruntime", "tensorrt"):
        with pytest.raises(ParameterValidationError, match="max_matches: applies to the torch backend only"):
            config_from_values({**default_values(), "max_matches": 512, "backend": backend})
    assert find_problems({**default_values(), "max_matches": -1}) == ["max_matches: -1 is below the minimum 0"]


@pytest.mark.parametrize("switch", ["torch_compile", "cpu_bf16"])
def test_torch_switches_reach_the_matcher_options_and_are_torch_only(switch):
    assert switch not in config_from_values(default_values()).model.matcher_options()
    options = config_from_values({**default_values(), switch: True, "max_matches": 256}).model.matcher_options()
    assert options == {"device": "cpu", "backend": "auto", "size": None, "max_matches": 256, switch: True}
    for backend in ("onnxruntime", "tensorrt"):
        with pytest.raises(ParameterValidationError, match=f"{switch}: applies to the torch backend only"):
            config_from_values({**default_values(), switch: True, "backend": backend})


def test_valid_devices():
    for device in ("cpu", "cuda", "cuda:1"):
        assert SPECS_BY_NAME["device"].check(device) is None


def test_runtime_changes():
    current = default_values()
    assert check_runtime_change(current, {"min_inliers": 30, "homography_filter.enabled": False}) is None
    assert "cannot change while the node runs" in check_runtime_change(current, {"slop": 0.1})
    assert check_runtime_change(current, {"slop": 0.05}) is None  # re-setting the same value is harmless
    assert "below the minimum" in check_runtime_change(current, {"ransac_threshold_px": 0.0})
    assert "must be below" in check_runtime_change(current, {"thermal_normalization.high_percentile": 0.5})
    assert check_runtime_change(current, {"use_sim_time": True}) is None  # not ours: ROS handles it


def test_flatten_parameters():
    assert flatten_parameters({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a": 1, "b.c": 2, "b.d.e": 3}


def test_config_file_matches_the_declared_parameters_exactly():
    values = load_parameter_file(REPO / "config" / "matcher.yaml")
    assert set(values) == set(SPECS_BY_NAME)
    assert find_problems(values) == []
    assert values == default_values()  # the shipped file documents the defaults


def test_config_file_uses_wildcard_node_name():
    import yaml
    document = yaml.safe_load((REPO / "config" / "matcher.yaml").read_text())
    assert list(document) == ["/**"] and list(document["/**"]) == ["ros__parameters"]


def test_parameter_file_node_specific_entry_overrides_wildcard(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    slop: 0.1\n    min_inliers: 20\n"
                    "matcher_node:\n  ros__parameters:\n    slop: 0.2\n")
    assert load_parameter_file(path) == {"slop": 0.2, "min_inliers": 20}


def test_package_xml_declares_what_the_node_uses():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "distillmatch_ros"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "diagnostic_msgs", "diagnostic_updater",
                "message_filters", "launch", "launch_ros", "python3-numpy", "python3-opencv", "python3-yaml"):
        assert dep in exec_depends, dep
    test_depends = {e.text for e in root.findall("test_depend")}
    assert {"python3-pytest", "launch_testing"} <= test_depends
    assert root.find("export/build_type").text == "ament_python"


def test_node_module_imports_only_declared_ros_packages():
    tree = ast.parse((REPO / "distillmatch_ros" / "matcher_node.py").read_text())
    imported = {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    declared = {e.text for e in ET.parse(REPO / "package.xml").getroot().findall("exec_depend")}
    ros_imports = imported - {"__future__", "sys", "threading", "time", "typing", "distillmatch_core"}
    assert ros_imports <= declared, ros_imports - declared


def test_launch_file_declares_the_documented_arguments():
    source = (REPO / "launch" / "matcher.launch.py").read_text()
    tree = ast.parse(source)
    arguments = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert arguments == {"namespace", "config_file", "weights", "backend", "device", "rgb_topic", "thermal_topic",
                         "use_sim_time"}
    assert 'executable="matcher_node"' in source and 'package="distillmatch_ros"' in source


def test_setup_cfg_puts_scripts_where_ros2_run_looks():
    text = (REPO / "setup.cfg").read_text()
    assert "script_dir=$base/lib/distillmatch_ros" in text
    assert "install_scripts=$base/lib/distillmatch_ros" in text
