// The table of layer kinds, filled from model/kinds/*.cpp by the generated
// register_kinds (cmake/KilnKinds.cmake).
#include <algorithm>

#include "model/network.h"

namespace kiln::model {

void register_kinds(KindTable &table);  // generated

const std::vector<const Kind *> &kinds() {
    static const KindTable table = [] {
        KindTable t;
        register_kinds(t);
        std::sort(t.begin(), t.end(), [](const Kind *a, const Kind *b) { return a->name < b->name; });
        return t;
    }();
    return table;
}

const Kind *find_kind(std::string_view name) {
    for (const Kind *k : kinds())
        if (k->name == name) return k;
    return nullptr;
}

std::vector<std::vector<int>> Network::consumers() const {
    std::vector<std::vector<int>> out(layers.size());
    for (size_t i = 0; i < layers.size(); i++)
        for (int from : layers[i].inputs)
            if (from >= 0) out[size_t(from)].push_back(int(i));
    return out;
}

}  // namespace kiln::model
