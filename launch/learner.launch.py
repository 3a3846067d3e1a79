"""The dynamics learner alone, e.g. on a workstation with a GPU, learning from robots on the network.

    ros2 launch mbrl_ros learner.launch.py config:=shadow_hand_cube robots:="['left', 'right']"

Launch arguments:
    config / params_file: as in sim.launch.py.
    use_sim_time: use /clock (default false: a real robot's stamps).
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
    use_sim_time = {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="shadow_hand_cube",
                              description="config name in share/mbrl_ros/config"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("mbrl_ros"), "config",
                                                                  [config, ".yaml"]]),
                              description="parameter file (ros__parameters form); default: the named config"),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="use /clock"),
        Node(package="mbrl_ros", executable="dynamics_learner", name="dynamics_learner", namespace="",
             output="screen", parameters=[params_file, use_sim_time]),
    ])
