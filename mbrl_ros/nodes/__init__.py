"""ROS 2 nodes (thin shells over the library) and the message <-> numpy conversions they share.

- :mod:`mbrl_ros.nodes.conversions`: JointState, PoseStamped, TwistStamped, Float64MultiArray, JointTrajectory
  and Image to and from numpy, validating what they read.
- :mod:`mbrl_ros.nodes.state_assembly`: a task's state vector from a robot's topics.
- :mod:`mbrl_ros.nodes.mujoco_bridge`: the simulated robot.
- :mod:`mbrl_ros.nodes.bag_recorder`: records topics into a rosbag2 bag (MCAP).
"""
