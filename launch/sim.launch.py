"""The simulated robot learning under MPC: mujoco_bridge + dynamics_learner + mpc_controller.

    ros2 launch mbrl_ros sim.launch.py config:=shadow_hand_cube mode:=realtime

Launch arguments:
    config: a config name in share/mbrl_ros/config (shadow_hand_cube, cartpole_swingup, half_cheetah).
    params_file: a parameter file of your own instead (default: the named config).
    mode: lockstep (the bridge steps once per command) or realtime (wall-clock physics, fixed-rate commands).
    use_sim_time: the nodes use the bridge's /clock (default true).

The same graph runs without ``ros2 launch`` as ``mbrl-ros up CONFIG`` (one process, same parameter files).
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    params_file = LaunchConfiguration("params_file")
    # Given after the file and, with namespace="" (a fully qualified node name), written under the node's own
    # name: so these launch arguments win over the file's values.
    graph_parameters = {"mode": LaunchConfiguration("mode"),
                        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="shadow_hand_cube",
                              description="config name in share/mbrl_ros/config"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("mbrl_ros"), "config",
                                                                  [config, ".yaml"]]),
                              description="parameter file (ros__parameters form); default: the named config"),
        DeclareLaunchArgument("mode", default_value="lockstep", choices=["lockstep", "realtime"],
                              description="lockstep: one physics step per command; realtime: wall-clock"),
        DeclareLaunchArgument("use_sim_time", default_value="true", choices=["true", "false"],
                              description="use the bridge's /clock"),
        Node(package="mbrl_ros", executable="mujoco_bridge", name="mujoco_bridge", namespace="", output="screen",
             parameters=[params_file, graph_parameters]),
        Node(package="mbrl_ros", executable="dynamics_learner", name="dynamics_learner", namespace="", output="screen",
             parameters=[params_file, graph_parameters]),
        Node(package="mbrl_ros", executable="mpc_controller", name="mpc_controller", namespace="", output="screen",
             parameters=[params_file, graph_parameters]),
    ])
