#include "mesh_view.hpp"
