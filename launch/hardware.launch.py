"""A real robot learning under MPC: dynamics_learner + mpc_controller on the robot's own ros2_control topics.

    ros2 launch mbrl_ros hardware.launch.py config:=my_robot joint_states:=/my_robot/joint_states

The controller reads ``joint_states`` and publishes ``<controller>/commands`` (std_msgs/Float64MultiArray, the
ros2_control forward_command_controller convention; set ``controller`` in the config, e.g.
``allegro_hand_position_controller``), or ``<controller>/joint_trajectory`` with ``command_interface``. Poses
of objects come from ``/<bridge>/<body>_pose``: remap them onto your tracker's topics in your own launch file,
the same way ``joint_states`` is remapped here.

Launch arguments:
    config: a config name in share/mbrl_ros/config (required).
    params_file: a parameter file of your own instead.
    joint_states: the robot's joint state topic (default /joint_states).
    mode: realtime (fixed-rate commands; the default for hardware) or lockstep.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    params_file = LaunchConfiguration("params_file")
    # Hardware stamps are wall-clock: no /clock. Written under each node's own name (namespace=""), these
    # win over the file's values.
    graph_parameters = {"mode": LaunchConfiguration("mode"), "use_sim_time": False}
    remappings = [("/joint_states", LaunchConfiguration("joint_states"))]
    return LaunchDescription([
        DeclareLaunchArgument("config", description="config name in share/mbrl_ros/config"),
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("mbrl_ros"), "config",
                                                                  [config, ".yaml"]]),
                              description="parameter file (ros__parameters form); default: the named config"),
        DeclareLaunchArgument("joint_states", default_value="/joint_states", description="joint state topic"),
        DeclareLaunchArgument("mode", default_value="realtime", choices=["realtime", "lockstep"],
                              description="realtime: fixed-rate commands; lockstep: one command per state"),
        Node(package="mbrl_ros", executable="dynamics_learner", name="dynamics_learner", namespace="",
             output="screen", parameters=[params_file, graph_parameters], remappings=remappings),
        Node(package="mbrl_ros", executable="mpc_controller", name="mpc_controller", namespace="",
             output="screen", parameters=[params_file, graph_parameters], remappings=remappings),
    ])
