#include "broadcast_tree.hpp"
